/**
 * A progress bar on stderr, with no dependency: one line redrawn in place when stderr is a terminal,
 * plain lines otherwise (a CI log or a file gets one line per finished step, never escape codes).
 *
 * The estimate of the time left assumes the remaining steps take as long as the finished ones did on
 * average, which holds for the benchmark's equal-length windows.
 *
 * @example
 * const progress = new Progress(160, 'loopback');
 * progress.doing('tsgi-10 json -p 10');
 * progress.done('tsgi-10 json -p 10: 11.3 µs/req');
 * progress.finish();
 */
export class Progress {
  readonly #total: number;
  readonly #label: string;
  readonly #stream: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #started = performance.now();
  #finished = 0;
  #current = '';

  constructor(total: number, label: string, stream: NodeJS.WriteStream = process.stderr) {
    this.#total = Math.max(total, 1);
    this.#label = label;
    this.#stream = stream;
    this.#tty = stream.isTTY === true;
  }

  /** Says what runs now (redraws the bar; nothing on a plain stream). */
  doing(text: string): void {
    this.#current = text;
    if (this.#tty) this.#draw();
  }

  /** Marks one step finished, with what it found. */
  done(text: string): void {
    this.#finished++;
    this.#current = '';
    if (this.#tty) this.#draw();
    else this.#stream.write(`[${this.#label} ${this.#finished}/${this.#total} ${this.#times()}] ${text}\n`);
  }

  /** Writes a line above the bar (a warning, a heading). */
  note(text: string): void {
    if (this.#tty) this.#stream.write(`\r\x1b[2K${text}\n`);
    else this.#stream.write(`${text}\n`);
    if (this.#tty) this.#draw();
  }

  /** Clears the bar and leaves one line with the total time. */
  finish(): void {
    const line = `${this.#label}: ${this.#finished} steps in ${formatDuration(this.#elapsed())}`;
    this.#stream.write(this.#tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
  }

  #elapsed(): number {
    return (performance.now() - this.#started) / 1000;
  }

  #times(): string {
    const elapsed = this.#elapsed();
    if (this.#finished === 0) return formatDuration(elapsed);
    const left = (elapsed / this.#finished) * (this.#total - this.#finished);
    return `${formatDuration(elapsed)}, ${formatDuration(left)} left`;
  }

  #draw(): void {
    const width = 24;
    const filled = Math.round((this.#finished / this.#total) * width);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    const percent = `${Math.floor((this.#finished / this.#total) * 100)}%`.padStart(4);
    let line = `${this.#label} ${bar} ${percent} ${this.#finished}/${this.#total} ${this.#times()}  ${this.#current}`;
    const columns = this.#stream.columns || 100;
    if (line.length > columns - 1) line = line.slice(0, columns - 1);
    this.#stream.write(`\r\x1b[2K${line}`);
  }
}

/**
 * A duration in seconds as `42s` or `3m07s`.
 *
 * @example
 * formatDuration(187); // '3m07s'
 */
export function formatDuration(seconds: number): string {
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole}s`;
  return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
}
