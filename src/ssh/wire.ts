// RFC 4251 section 5 data types, the encoding every SSH key, signature and
// certificate blob is made of. Reading is strict: a length that runs past the
// end of the buffer is an error, never a silent truncation.

export class WireError extends Error {
  override name = 'WireError';
}

export class SshWriter {
  private chunks: Buffer[] = [];

  uint32(n: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    this.chunks.push(b);
    return this;
  }

  uint64(n: bigint): this {
    if (n < 0n || n > 0xffff_ffff_ffff_ffffn) throw new WireError(`uint64 out of range: ${n}`);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(n);
    this.chunks.push(b);
    return this;
  }

  string(data: Buffer | string): this {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    this.uint32(buf.length);
    this.chunks.push(buf);
    return this;
  }

  /** An mpint from unsigned big-endian magnitude bytes (leading zeros are stripped, a 0x00 added when the top bit is set). */
  mpint(magnitude: Buffer): this {
    let i = 0;
    while (i < magnitude.length && magnitude[i] === 0) i++;
    let body = magnitude.subarray(i);
    if (body.length > 0 && (body[0]! & 0x80) !== 0) body = Buffer.concat([Buffer.from([0]), body]);
    return this.string(body);
  }

  raw(data: Buffer): this {
    this.chunks.push(data);
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export class SshReader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  get offset(): number {
    return this.pos;
  }

  private take(n: number, what: string): Buffer {
    if (n > this.remaining) throw new WireError(`truncated ${what}: need ${n} bytes, ${this.remaining} left`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  raw(n: number, what = 'bytes'): Buffer {
    return this.take(n, what);
  }

  uint32(what = 'uint32'): number {
    return this.take(4, what).readUInt32BE(0);
  }

  uint64(what = 'uint64'): bigint {
    return this.take(8, what).readBigUInt64BE(0);
  }

  string(what = 'string'): Buffer {
    const len = this.uint32(`${what} length`);
    return this.take(len, what);
  }

  /** A string that must be printable UTF-8 text. */
  text(what = 'string'): string {
    const b = this.string(what);
    const s = b.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(b)) throw new WireError(`${what} is not valid UTF-8`);
    return s;
  }

  /** A positive mpint's magnitude (no sign byte); negative values are refused. */
  mpint(what = 'mpint'): Buffer {
    const b = this.string(what);
    if (b.length > 0 && (b[0]! & 0x80) !== 0) throw new WireError(`${what} is negative`);
    if (b.length > 1 && b[0] === 0 && (b[1]! & 0x80) === 0) throw new WireError(`${what} has a needless leading zero`);
    return b[0] === 0 ? b.subarray(1) : b;
  }

  end(what: string): void {
    if (this.remaining !== 0) throw new WireError(`${this.remaining} unexpected trailing bytes after ${what}`);
  }
}
