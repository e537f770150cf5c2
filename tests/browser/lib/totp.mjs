// TOTP as an authenticator app computes it: RFC 6238 over RFC 4226, HMAC-SHA-1, 30 s
// steps, 6 digits, the secret in base32 (RFC 4648) as souk shows it.

import { createHmac } from 'node:crypto';

export function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = text.toUpperCase().replace(/[\s=-]/g, '');
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${JSON.stringify(ch)} in the TOTP secret`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The code for time step `step` (RFC 4226 HOTP with counter = step). */
export function hotp(secret, step, digits = 6) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const bin = (mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits;
  return String(bin).padStart(digits, '0');
}

export const STEP_SECS = 30;
export const stepAt = (unixSecs) => Math.floor(unixSecs / STEP_SECS);

/** The code at a Unix time (seconds) for a base32 secret or raw bytes. */
export function totp(secret, unixSecs = Date.now() / 1000) {
  const key = typeof secret === 'string' ? base32Decode(secret) : secret;
  return hotp(key, stepAt(unixSecs));
}

/**
 * A code souk will accept after `lastStep` was used: it takes each step once, later than
 * the last one used, within one step of skew. Waits for the clock when it must.
 * Returns { code, step }.
 */
export async function freshCode(secret, lastStep = -1) {
  const key = typeof secret === 'string' ? base32Decode(secret) : secret;
  for (;;) {
    const now = stepAt(Date.now() / 1000);
    // Next step is fine (one step of skew), unless it is close to becoming "two ahead".
    const step = Math.max(now, lastStep + 1);
    if (step <= now + 1) return { code: hotp(key, step), step };
    await new Promise((r) => setTimeout(r, 1000));
  }
}
