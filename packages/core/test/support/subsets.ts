/** All k-subsets of {0..m-1}, in lexicographic order. */
export function subsets(m: number, k: number): number[][] {
  const out: number[][] = [];
  const pick = (start: number, chosen: number[]): void => {
    if (chosen.length === k) {
      out.push(chosen);
      return;
    }
    for (let i = start; i < m; i++) pick(i + 1, [...chosen, i]);
  };
  pick(0, []);
  return out;
}
