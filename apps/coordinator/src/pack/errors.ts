/**
 * Errors about the operator's data: a file that cannot be read or parsed, a dataset pack
 * that does not match its manifest. The message always names the file, and the row (CSV),
 * header field (IDX) or manifest field at fault; the CLI prints it on one line and exits 2.
 */
export class DataError extends Error {
  constructor(
    /** The file (or URL) at fault. */
    readonly file: string,
    /** What is wrong, and where in the file. */
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'DataError';
  }
}
