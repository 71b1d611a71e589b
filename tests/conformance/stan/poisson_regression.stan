// Stan 2.21 version of examples/poisson_regression.afm.
data {
  int<lower=0> N;
  vector[N] x;
  vector<lower=0>[N] exposure;
  int<lower=0> y[N];
}
transformed data {
  vector[N] log_exposure = log(exposure);
}
parameters {
  real alpha;
  real beta;
}
model {
  alpha ~ normal(0, 5);
  beta ~ normal(0, 5);
  y ~ poisson_log(log_exposure + alpha + beta * x);
}
