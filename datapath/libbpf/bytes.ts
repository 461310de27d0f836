// Little-endian (host order on the targets we run on) integers as map keys and values hold them.

/** `n` as a u32; a negative number is taken modulo 2^32, as the C side would store it. */
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}
