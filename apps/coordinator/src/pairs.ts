/**
 * Values keyed by an unordered pair of tab ids, indexed by tab so that everything one tab is in
 * is found and dropped in time proportional to its own pairs (a tab leaving must not scan the
 * links of 10,000 others).
 */
export class PairMap<V> {
  private readonly values = new Map<string, V>();
  /** Tab → the tabs it shares a pair with. */
  private readonly byTab = new Map<string, Set<string>>();

  get size(): number {
    return this.values.size;
  }

  get(a: string, b: string): V | undefined {
    return this.values.get(pairKey(a, b));
  }

  has(a: string, b: string): boolean {
    // through the index (kept with every set and delete): no key string built per question
    return this.byTab.get(a)?.has(b) === true;
  }

  set(a: string, b: string, value: V): void {
    this.values.set(pairKey(a, b), value);
    this.index(a, b);
    this.index(b, a);
  }

  /** Whether the pair was there. */
  delete(a: string, b: string): boolean {
    if (!this.values.delete(pairKey(a, b))) return false;
    this.unindex(a, b);
    this.unindex(b, a);
    return true;
  }

  /** The tabs `tab` shares a pair with. */
  partnersOf(tab: string): string[] {
    return [...(this.byTab.get(tab) ?? [])];
  }

  /** Every tab in at least one pair. */
  tabs(): string[] {
    return [...this.byTab.keys()];
  }

  /** The values of every pair. */
  pairValues(): IterableIterator<V> {
    return this.values.values();
  }

  /** Drops every pair `tab` is in; returns its former partners. */
  deleteTab(tab: string): string[] {
    const partners = this.partnersOf(tab);
    for (const partner of partners) this.delete(tab, partner);
    return partners;
  }

  private index(tab: string, partner: string): void {
    let partners = this.byTab.get(tab);
    if (!partners) this.byTab.set(tab, (partners = new Set()));
    partners.add(partner);
  }

  private unindex(tab: string, partner: string): void {
    const partners = this.byTab.get(tab);
    partners?.delete(partner);
    if (partners?.size === 0) this.byTab.delete(tab);
  }
}

/** Tab ids never contain a newline (protocol: tab-xxxxxxxx). */
function pairKey(a: string, b: string): string {
  return a < b ? `${a}\n${b}` : `${b}\n${a}`;
}
