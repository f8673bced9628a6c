/**
 * How often each outcome occurred in one property's runs: 'ok', or a reason
 * for a rejection. Property tests that feed random or mutated input count
 * what they exercised and assert floors on it, so that "never crashes" cannot
 * pass by rejecting everything.
 */
export class Tally {
  private readonly counts = new Map<string, number>();

  add(o: string): void {
    this.counts.set(o, (this.counts.get(o) ?? 0) + 1);
  }

  get ok(): number {
    return this.counts.get('ok') ?? 0;
  }

  get rejected(): number {
    return [...this.counts.values()].reduce((a, b) => a + b, 0) - this.ok;
  }

  /** The distinct reasons seen. */
  get reasons(): number {
    return this.counts.size - (this.counts.has('ok') ? 1 : 0);
  }

  /** The counts, for failure messages: the distribution is what a reader needs to judge a drop. */
  toString(): string {
    return JSON.stringify(Object.fromEntries([...this.counts].sort((a, b) => b[1] - a[1])));
  }
}
