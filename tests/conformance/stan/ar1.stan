// Stan 2.21 version of examples/ar1.afm.
data {
  int<lower=2> N;
  vector[N] y;
}
parameters {
  real alpha;
  real<lower=-1, upper=1> beta;
  real<lower=0> sigma;
}
model {
  alpha ~ normal(0, 2);
  sigma ~ cauchy(0, 2.5);
  y[2:N] ~ normal(alpha + beta * y[1:(N - 1)], sigma);
}
