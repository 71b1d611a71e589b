// Stan 2.21 version of examples/german.afm.
data {
  int<lower=0> N;
  int<lower=1> D;
  matrix[N, D] X;
  int<lower=0, upper=1> y[N];
}
parameters {
  vector[D + 1] beta;
  real alpha;
}
model {
  vector[N] s = X * beta[1:D] + beta[D + 1];
  y ~ bernoulli_logit(s);
  target += -0.5 * exp(alpha) * dot_self(beta) - 0.01 * exp(alpha) + (D + 1) * alpha / 2;
}
