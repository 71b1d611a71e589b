// Stan 2.21 version of examples/hierarchical_intercepts.afm.
data {
  int<lower=0> N;
  int<lower=1> J;
  int<lower=1, upper=J> group[N];
  vector[N] x;
  vector[N] y;
}
parameters {
  vector[J] a;
  real b;
  real mu_a;
  real<lower=0, upper=10> sigma_a;
  real<lower=0, upper=10> sigma_y;
}
model {
  mu_a ~ normal(0, 10);
  b ~ normal(0, 10);
  a ~ normal(mu_a, sigma_a);
  y ~ normal(a[group] + b * x, sigma_y);
}
