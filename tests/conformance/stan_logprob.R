# Prints rstan's log_prob and grad_log_prob of a Stan model at given
# unconstrained points, in the layout of afm_logprob: one line per point,
# the log-density (with the log-Jacobian, without the constants that ~
# drops) and then its gradient.
#
#   Rscript stan_logprob.R MODEL.stan DATA.json POINTS OUTPUT CACHE_DIR
#
# The compiled model is kept in CACHE_DIR as NAME.rds and reused while it
# is newer than MODEL.stan, because compiling takes minutes.
suppressPackageStartupMessages({
  library(rstan)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 5) {
  stop("usage: Rscript stan_logprob.R MODEL.stan DATA.json POINTS OUTPUT CACHE_DIR")
}
stan_file <- args[1]
data_file <- args[2]
points_file <- args[3]
output_file <- args[4]
cache_dir <- args[5]

name <- sub("\\.stan$", "", basename(stan_file))
cache_file <- file.path(cache_dir, paste0(name, ".rds"))
if (file.exists(cache_file) && file.mtime(cache_file) > file.mtime(stan_file)) {
  model <- readRDS(cache_file)
} else {
  # Debian's r-cran-bh installs no headers of its own but depends on
  # libboost-dev, so Boost is then found under /usr/include.
  boost <- system.file("include", package = "BH")
  if (boost == "") {
    boost <- "/usr/include"
  }
  model <- stan_model(stan_file, model_name = name, boost_lib = boost)
  saveRDS(model, cache_file)
}

data <- fromJSON(data_file)
# chains = 0 checks the data and builds the model object without sampling,
# which is all that log_prob and grad_log_prob need.
fit <- sampling(model, data = data, chains = 0)

points <- as.matrix(read.table(points_file))
lines <- character(nrow(points))
for (i in seq_len(nrow(points))) {
  z <- as.numeric(points[i, ])
  gradient <- grad_log_prob(fit, z, adjust_transform = TRUE)
  lp <- attr(gradient, "log_prob")
  lines[i] <- paste(sprintf("%.17g", c(lp, as.numeric(gradient))), collapse = " ")
}
writeLines(lines, output_file)
