/**
 * The /metrics response body, assembled from three parts. MetricsBodies
 * renders the process metrics at most once per PROCESS_METRICS_MAX_AGE_MS and
 * the exporter's own metrics on every scrape. It encodes the session gauges of
 * a snapshot when that snapshot is first served. A gzip body is one
 * gzip member (RFC 1952) whose deflate stream is the parts' deflate data in
 * order, so a snapshot is compressed once however often it is scraped.
 */
import { constants, crc32, deflateRaw, deflateRawSync } from 'node:zlib';
import { promisify } from 'node:util';

import type { Registry } from 'prom-client';

import type { SelfMetrics } from '../metrics/self.js';
import type { Snapshot } from '../sessions/snapshot.js';

/**
 * Age up to which one render of the process metrics is served again.
 * prom-client's collectors read /proc and compute event-loop percentiles,
 * over a millisecond per render, while a value one second old changes no
 * Prometheus query.
 */
export const PROCESS_METRICS_MAX_AGE_MS = 1000;

const deflateRawAsync = promisify(deflateRaw);

/**
 * Deflate data of a part ends with an empty stored block (Z_SYNC_FLUSH), on a
 * byte boundary and not final, so more deflate data may follow. A snapshot
 * is compressed once, so it gets the best compression.
 */
const SNAPSHOT_DEFLATE_OPTIONS = { finishFlush: constants.Z_SYNC_FLUSH, level: constants.Z_BEST_COMPRESSION };
const PROCESS_DEFLATE_OPTIONS = { finishFlush: constants.Z_SYNC_FLUSH };

/** Largest stored block of deflate (RFC 1951, section 3.2.4): LEN is 16 bits. */
const MAX_STORED_BLOCK_BYTES = 65_535;

/** A final fixed-Huffman block holding only the end-of-block code: ends the deflate stream after the last part. */
const FINAL_EMPTY_BLOCK = Buffer.from([0x03, 0x00]);

/** gzip header: magic, deflate, no flags, no modification time, no extra flags, unknown operating system. */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff]);

/** Exposition text encoded as UTF-8, with its CRC-32 and, once requested, its deflate data. */
export class EncodedPart {
  readonly bytes: Buffer;
  readonly crc: number;
  #deflated: Buffer | Promise<Buffer> | undefined;
  #crcShift: CrcShift | undefined;

  constructor(text: string) {
    this.bytes = Buffer.from(text, 'utf8');
    this.crc = crc32(this.bytes);
  }

  /** Compresses on the calling thread, for a part of a few kilobytes. */
  deflatedSync(): Buffer {
    if (this.#deflated instanceof Buffer) return this.#deflated;
    const deflated = deflateRawSync(this.bytes, PROCESS_DEFLATE_OPTIONS);
    this.#deflated = deflated;
    return deflated;
  }

  /** Compresses in the libuv thread pool, once: concurrent callers share the one compression. */
  async deflated(): Promise<Buffer> {
    if (this.#deflated === undefined) {
      this.#deflated = deflateRawAsync(this.bytes, SNAPSHOT_DEFLATE_OPTIONS).then((deflated) => {
        this.#deflated = deflated;
        return deflated;
      });
    }
    return this.#deflated;
  }

  /** Returns the CRC-32 of the text before this part followed by this part, given the CRC-32 of the text before. */
  crcAfter(crcBefore: number): number {
    this.#crcShift ??= new CrcShift(this.bytes.length);
    return this.#crcShift.combine(crcBefore, this.crc);
  }
}

/** A response body as buffers to write in order. */
export interface MetricsBody {
  chunks: Buffer[];
  length: number;
  gzip: boolean;
}

/** Builds /metrics bodies from the self-metrics and the served snapshot. */
export class MetricsBodies {
  readonly #metrics: SelfMetrics;
  readonly #now: () => number;
  readonly #snapshots = new WeakMap<Snapshot, EncodedPart>();
  #processPart: { part: EncodedPart; renderedAtMs: number } | undefined;
  #processRender: Promise<EncodedPart> | undefined;

  constructor(metrics: SelfMetrics, now: () => number = Date.now) {
    this.#metrics = metrics;
    this.#now = now;
  }

  /** Renders the body of one scrape; `snapshot` is the one to serve, if any. */
  async build(snapshot: Snapshot | undefined, gzip: boolean): Promise<MetricsBody> {
    const processPart = await this.#processMetrics();
    const exporterPart = new EncodedPart(await this.#metrics.exporterRegistry.metrics());
    const parts = [processPart, exporterPart];
    if (snapshot !== undefined) parts.push(this.#snapshotPart(snapshot));

    if (!gzip) {
      const chunks = parts.map((part) => part.bytes);
      return { chunks, length: totalLength(chunks), gzip };
    }
    // Setting up a zlib stream costs more than compressing a few kilobytes saves, so the exporter's metrics go uncompressed.
    const snapshotPart = snapshot === undefined ? undefined : this.#snapshotPart(snapshot);
    const deflated = [processPart.deflatedSync(), ...storedBlocks(exporterPart.bytes)];
    if (snapshotPart !== undefined) deflated.push(await snapshotPart.deflated());
    const chunks = gzipMember([processPart, exporterPart], snapshotPart, deflated);
    return { chunks, length: totalLength(chunks), gzip };
  }

  /**
   * The process metrics, rendered again once the last render is older than
   * PROCESS_METRICS_MAX_AGE_MS. The text ends with the blank line that
   * prom-client puts between metric families, so the exporter's metrics
   * follow as they would from one registry.
   */
  async #processMetrics(): Promise<EncodedPart> {
    const cached = this.#processPart;
    if (cached !== undefined && this.#now() - cached.renderedAtMs < PROCESS_METRICS_MAX_AGE_MS) return cached.part;

    this.#processRender ??= renderSeparated(this.#metrics.processRegistry)
      .then((text) => {
        const part = new EncodedPart(text);
        this.#processPart = { part, renderedAtMs: this.#now() };
        return part;
      })
      .finally(() => {
        this.#processRender = undefined;
      });
    return this.#processRender;
  }

  #snapshotPart(snapshot: Snapshot): EncodedPart {
    let part = this.#snapshots.get(snapshot);
    if (part === undefined) {
      part = new EncodedPart(snapshot.text);
      this.#snapshots.set(snapshot, part);
    }
    return part;
  }
}

async function renderSeparated(registry: Registry): Promise<string> {
  return `${await registry.metrics()}\n`;
}

/**
 * Returns `bytes` as deflate stored blocks, none final. The deflate data
 * before them must end on a byte boundary, as after the gzip header or a
 * Z_SYNC_FLUSH.
 */
function storedBlocks(bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += MAX_STORED_BLOCK_BYTES) {
    const block = bytes.subarray(offset, offset + MAX_STORED_BLOCK_BYTES);
    const header = Buffer.alloc(5);
    // Byte 0 is BFINAL = 0 and BTYPE = 00 (stored), then come LEN and its one's complement NLEN.
    header.writeUInt16LE(block.length, 1);
    header.writeUInt16LE(~block.length & 0xffff, 3);
    chunks.push(header, block);
  }
  return chunks;
}

function totalLength(chunks: readonly Buffer[]): number {
  return chunks.reduce((sum, chunk) => sum + chunk.length, 0);
}

/**
 * Wraps the parts' deflate data into one gzip member: header, data, final
 * block, then CRC-32 and length of the whole text. The parts rendered for the
 * scrape are checksummed directly, and the snapshot's checksum is combined in.
 */
function gzipMember(selfParts: readonly EncodedPart[], snapshotPart: EncodedPart | undefined, deflated: readonly Buffer[]): Buffer[] {
  let crc = 0;
  let length = 0;
  for (const part of selfParts) {
    crc = crc32(part.bytes, crc);
    length += part.bytes.length;
  }
  if (snapshotPart !== undefined) {
    crc = snapshotPart.crcAfter(crc);
    length += snapshotPart.bytes.length;
  }

  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  // ISIZE is the length modulo 2^32 (RFC 1952, section 2.3.1).
  trailer.writeUInt32LE(length % 2 ** 32, 4);
  return [GZIP_HEADER, ...deflated, FINAL_EMPTY_BLOCK, trailer];
}

/**
 * Combines CRC-32 values across a part of fixed length without reading its
 * bytes again. Appending a zero bit to a message is a linear map on the
 * CRC-32 register, so appending `length` zero bytes is one 32x32 bit matrix
 * over GF(2), built once by repeated squaring as in zlib's crc32_combine.
 * Then CRC(A followed by B) = shift(CRC(A)) XOR CRC(B).
 */
export class CrcShift {
  /** Column `bit` is the image of the register value with only that bit set. */
  readonly #matrix: Uint32Array;

  constructor(length: number) {
    // The map for one zero bit: shift right, and XOR the reflected polynomial when a set low bit falls out.
    let power: Uint32Array = new Uint32Array(32);
    power[0] = 0xedb88320;
    for (let bit = 1; bit < 32; bit++) power[bit] = 1 << (bit - 1);
    for (let squarings = 0; squarings < 3; squarings++) power = squareMatrix(power); // one zero byte

    let shift: Uint32Array = identityMatrix();
    // Multiplies in the map for 2^k zero bytes for each bit k set in the length.
    for (let remaining = length; remaining > 0; remaining = Math.floor(remaining / 2)) {
      if (remaining % 2 === 1) shift = multiplyMatrices(power, shift);
      power = squareMatrix(power);
    }
    this.#matrix = shift;
  }

  /** Returns the CRC-32 of A followed by B, given both values and B of the length this shift was built for. */
  combine(crcA: number, crcB: number): number {
    return (applyMatrix(this.#matrix, crcA) ^ crcB) >>> 0;
  }
}

function identityMatrix(): Uint32Array {
  const matrix = new Uint32Array(32);
  for (let bit = 0; bit < 32; bit++) matrix[bit] = 2 ** bit;
  return matrix;
}

function applyMatrix(matrix: Uint32Array, vector: number): number {
  let product = 0;
  let bits = vector >>> 0;
  for (let bit = 0; bits !== 0; bit++, bits >>>= 1) {
    if ((bits & 1) !== 0) product ^= matrix[bit] as number;
  }
  return product >>> 0;
}

/** Returns the matrix of `first` followed by `second` applied to a register: second(first(x)). */
function multiplyMatrices(second: Uint32Array, first: Uint32Array): Uint32Array {
  const product = new Uint32Array(32);
  for (let bit = 0; bit < 32; bit++) product[bit] = applyMatrix(second, first[bit] as number);
  return product;
}

function squareMatrix(matrix: Uint32Array): Uint32Array {
  return multiplyMatrices(matrix, matrix);
}
