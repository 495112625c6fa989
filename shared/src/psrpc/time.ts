/** psrpc timestamps are Unix nanoseconds (int64, bigint in JS). */
export const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;
