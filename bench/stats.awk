# Shared by the bench/ scripts' reports (prepended to their awk programs).

# median sorts a[1..n] in place and returns its median.
function median(a, n,   i, j, t) {
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}

# ci is the distribution-free 95 % confidence interval of the median of
# a[1..n], already sorted (by median): the order statistics n/2 ± 0.98 √n.
function ci(a, n,   lo, hi) {
  lo = int(n / 2 - 0.98 * sqrt(n)); hi = int(n / 2 + 1 + 0.98 * sqrt(n) + 0.999)
  if (lo < 1) lo = 1
  if (hi > n) hi = n
  return sprintf("%+.0f – %+.0f µs", a[lo], a[hi])
}
