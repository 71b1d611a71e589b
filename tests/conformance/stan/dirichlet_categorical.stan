// Stan 2.21 version of examples/dirichlet_categorical.afm.
data {
  int<lower=1> K;
  int<lower=0> N;
  vector<lower=0>[K] alpha;
  int<lower=1, upper=K> y[N];
}
parameters {
  simplex[K] theta;
}
model {
  theta ~ dirichlet(alpha);
  y ~ categorical(theta);
}
