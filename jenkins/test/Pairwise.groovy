/**
 * Argument lists in combination: every pair of values of every two
 * parameters appears together in at least one list (pairwise coverage), so a
 * member is called with, say, the one operation it accepts together with each
 * hostile map, not only the values that happen to share an index. The whole
 * product when it is small enough. Deterministic: the same lists every run.
 */
class Pairwise {
  /**
   * The picks depend only on the pools' sizes: the greedy covering (strings
   * in a set, in dynamic Groovy) was the sweeps' hottest code, computed again
   * for every member of every sweep with the same sizes. Computed once per
   * shape, the lists are the same as before.
   */
  private static final Map<String, List<int[]>> PICKS = [:]

  static List<Object[]> of(List<List> pools, int wholeProductUpTo = 200) {
    int n = pools.size()
    if (n == 0) return [[] as Object[]]
    String shape = "${wholeProductUpTo}:${pools*.size()}".toString()
    List<int[]> picks = PICKS[shape]
    if (picks == null) PICKS[shape] = picks = picksFor(pools*.size(), wholeProductUpTo)
    return picks.collect { int[] pick -> (0..<n).collect { int k -> pools[k][pick[k]] } as Object[] }
  }

  /** Indexes into pools of these sizes. */
  private static List<int[]> picksFor(List<Integer> sizes, int wholeProductUpTo) {
    List<List> pools = sizes.collect { int size -> (0..<size).toList() }
    int n = pools.size()
    long total = 1
    for (List p : pools) total *= Math.max(1, p.size())
    List<int[]> picks = []
    if (total <= wholeProductUpTo || n == 1) {
      for (long i = 0; i < total; i++) {
        int[] pick = new int[n]
        long rest = i
        for (int k = n - 1; k >= 0; k--) { pick[k] = (int) (rest % pools[k].size()); rest = rest.intdiv(pools[k].size()) }
        picks << pick
      }
    } else {
      Set<String> uncovered = new HashSet<String>()
      for (int p = 0; p < n; p++) for (int q = p + 1; q < n; q++)
        for (int a = 0; a < pools[p].size(); a++) for (int b = 0; b < pools[q].size(); b++) uncovered << "${p}:${a}|${q}:${b}".toString()
      Random random = new Random(20261204L)
      while (!uncovered.isEmpty()) {
        // The first uncovered pair is always in the pick; the rest is the best of a few random fillings.
        String[] first = uncovered.iterator().next().split(/\|/)
        int[] best = null
        int bestGain = -1
        for (int attempt = 0; attempt < 24; attempt++) {
          int[] pick = new int[n]
          for (int k = 0; k < n; k++) pick[k] = random.nextInt(pools[k].size())
          for (String part : first) { String[] pv = part.split(':'); pick[pv[0] as int] = pv[1] as int }
          int gain = 0
          for (int p = 0; p < n; p++) for (int q = p + 1; q < n; q++) if (uncovered.contains("${p}:${pick[p]}|${q}:${pick[q]}".toString())) gain++
          if (gain > bestGain) { best = pick; bestGain = gain }
        }
        for (int p = 0; p < n; p++) for (int q = p + 1; q < n; q++) uncovered.remove("${p}:${best[p]}|${q}:${best[q]}".toString())
        picks << best
      }
    }
    return picks
  }
}
