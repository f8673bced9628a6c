/**
 * The explain log: every rewrite a pass applied, and every one it considered
 * and skipped with the reason, so nothing fails silently (`--explain`).
 */
export interface ExplainEntry {
  readonly pass: string;
  readonly rule: string;
  readonly applied: boolean;
  /** e.g. `batch_normalization folded into conv2d` or `bn_3 not folded into conv2d_2: conv2d_2 has 2 consumers`. */
  readonly message: string;
  /** Values involved (for tools such as `modelc verify` that check folded regions exactly). */
  readonly values?: Readonly<Record<string, string>>;
}

export class ExplainLog {
  readonly entries: ExplainEntry[] = [];
  private pass = '';

  /** Set by the pass manager: the pass now running. */
  enter(pass: string): void {
    this.pass = pass;
  }

  applied(rule: string, message: string, values?: Record<string, string>): void {
    this.entries.push({ pass: this.pass, rule, applied: true, message, ...(values ? { values } : {}) });
  }

  skipped(rule: string, message: string): void {
    const dup = this.entries.some((e) => !e.applied && e.pass === this.pass && e.message === message);
    if (!dup) this.entries.push({ pass: this.pass, rule, applied: false, message });
  }

  /** Notes that are neither applications nor refusals (numeric guards: flushed subnormals, ...). */
  note(rule: string, message: string): void {
    this.entries.push({ pass: this.pass, rule, applied: true, message });
  }

  format(): string {
    return this.entries.map((e) => `${e.pass}: ${e.applied ? '' : 'skipped: '}${e.message}`).join('\n');
  }
}
