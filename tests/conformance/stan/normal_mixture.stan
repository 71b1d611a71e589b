// Stan 2.21 version of examples/normal_mixture.afm. The lognormal scale is
// written 2.0 because lognormal_lpdf of StanHeaders 2.21 computes
// 1 / value_of(sigma) in integer arithmetic for an int sigma, so with
// lognormal(0, 2) the -(log y - mu)^2 / (2 sigma^2) term becomes 0.
data {
  int<lower=0> N;
  vector[N] y;
}
parameters {
  real<lower=0, upper=1> theta;
  ordered[2] mu;
  vector<lower=0>[2] sigma;
}
model {
  theta ~ beta(2, 2);
  mu ~ normal(0, 10);
  sigma ~ lognormal(0, 2.0);
  for (n in 1:N) {
    target += log_sum_exp(log(theta) + normal_lpdf(y[n] | mu[1], sigma[1]),
                          log1m(theta) + normal_lpdf(y[n] | mu[2], sigma[2]));
  }
}
