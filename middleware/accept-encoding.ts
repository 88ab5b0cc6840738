/**
 * Accept-Encoding, read in one pass (RFC 9110 §12.5.3): does the client take gzip, or only identity?
 * `gzip()` asks this on every compressible response, so it must cost next to nothing for a typical
 * header (`gzip, deflate, br, zstd`) and a bounded amount for a hostile one: a parser that split,
 * trimmed and pattern-matched each element cost about 6 µs per element, and a 10 KB header 30 ms.
 *
 * How a header is read:
 * - elements are codings (`gzip`, `x-gzip` — the same coding, RFC 9110 §8.4.1.3 —, `identity`, `*`,
 *   any other token), each with an optional weight `;q=` from 0 to 1 with at most three decimals;
 *   names and `q` in any case, whitespace around elements and before `;` or after it, empty elements
 *   (`gzip,,br,`) skipped (RFC 9110 §5.6.1.2);
 * - an element whose coding is not a token (`g zip`, `gzip\0`, `;q=1`) names nothing: it is skipped;
 * - an element whose weight cannot be read (`q=abc`, `q=2`, `q=0.0001`, `q =1`, another parameter
 *   such as `level=9`) is taken as a refusal of its coding (q=0): the client said something about
 *   that coding we cannot read, and identity, the other answer, is always safe to send;
 * - a coding listed twice counts at its lowest weight (a refusal anywhere is a refusal);
 * - `*` gives its weight to gzip and identity when they are not listed; an unlisted identity is
 *   acceptable but loses to any gzip weight above 0; on a tie gzip wins; when nothing is acceptable
 *   (`identity;q=0, *;q=0`) the answer is still identity, never an error (a 406 helps nobody here);
 * - a quoted string in a parameter is skipped whole, so a comma inside it cannot forge an element.
 *
 * The cap: a header longer than {@link MAX_ACCEPT_ENCODING} (16 KiB, Node's default limit for all
 * request headers together) is not read at all and means identity. No client sends such a header
 * honestly, and reading only part of it could miss a refusal at its end. Below the cap, the parser
 * reads each character once, through `charCodeAt` only (the tests count the reads), and allocates
 * nothing.
 */

/** The longest Accept-Encoding that is read, in UTF-16 code units; a longer one means identity. */
export const MAX_ACCEPT_ENCODING = 16 * 1024;

// The codings that matter, lower case, as character codes. Their lengths differ, so a token's length
// and the names it still matches tell which one it is.
const NAMES = [[...'gzip'], [...'x-gzip'], [...'identity'], ['*']].map((name) =>
  name.map((char) => char.charCodeAt(0)),
);
const GZIP = 0;
const X_GZIP = 1;
const IDENTITY = 2;
const ANY = 3;
const NONE = -1;
const EVERY_NAME = 0b1111;

/** A weight in thousandths above every real one: the coding was not listed. */
const UNLISTED = 1001;

// RFC 9110 §5.6.2 tchar: ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA.
const TCHAR = new Uint8Array(128);
for (const char of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[char.charCodeAt(0)] = 1;
}

const TAB = 0x09;
const SPACE = 0x20;
const QUOTE = 0x22;
const COMMA = 0x2c;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const BACKSLASH = 0x5c;

// Where the parser is within an element.
const START = 0; // before the coding: whitespace and empty elements
const CODING = 1; // in the coding's token
const AFTER_CODING = 2; // whitespace after it
const PARAMETER = 3; // after ';' (and whitespace): a parameter name must follow
const Q = 4; // read 'q', '=' must follow
const WEIGHT = 5; // read 'q=', the weight's first digit must follow
const UNITS = 6; // read '0' or '1'
const FRACTION = 7; // in the decimals
const AFTER_WEIGHT = 8; // whitespace after the weight
const SKIP = 9; // in an element that cannot be read, up to the next comma
const QUOTED = 10; // in a quoted string of such an element
const ESCAPED = 11; // after a backslash in that quoted string

const PLACES = [100, 10, 1];

/**
 * Chooses between gzip and identity for an Accept-Encoding header (see the file's notes for every
 * rule). No header, or one past the cap, means identity.
 *
 * @example
 * negotiate('gzip, deflate, br, zstd'); // 'gzip'
 * negotiate('br;q=1, gzip;q=0');        // 'identity'
 * negotiate('*;q=0.1');                 // 'gzip'
 */
export function negotiate(header: string | null): 'gzip' | 'identity' {
  if (header === null || header.length > MAX_ACCEPT_ENCODING) return 'identity';
  let gzip = UNLISTED;
  let identity = UNLISTED;
  let any = UNLISTED;
  let state = START;
  let alive = 0; // the names the coding read so far could still be, a bit each
  let size = 0; // the coding's characters read so far
  let coding = NONE;
  let weight = 1000; // in thousandths
  let decimals = 0;
  let one = false; // the weight's unit digit was 1, so only zeros may follow
  const end = header.length;
  for (let i = 0; i <= end; i++) {
    // The end closes the last element as a comma does; a comma in a quoted string does not.
    const c = i < end ? header.charCodeAt(i) : COMMA;
    if (c === COMMA && ((state !== QUOTED && state !== ESCAPED) || i === end)) {
      if (state === CODING) coding = named(alive, size);
      else if (state === PARAMETER || state === Q || state === WEIGHT) weight = 0; // `gzip;`, `gzip;q=`
      if (coding === GZIP || coding === X_GZIP) gzip = Math.min(gzip, weight);
      else if (coding === IDENTITY) identity = Math.min(identity, weight);
      else if (coding === ANY) any = Math.min(any, weight);
      state = START;
      coding = NONE;
      continue;
    }
    const blank = c === SPACE || c === TAB;
    if (state === START) {
      if (blank) continue;
      if (c < 128 && TCHAR[c] === 1) {
        state = CODING;
        alive = narrow(EVERY_NAME, 0, c);
        size = 1;
        weight = 1000;
      } else state = c === QUOTE ? QUOTED : SKIP; // no coding: the element names nothing
    } else if (state === CODING) {
      if (c < 128 && TCHAR[c] === 1) {
        if (alive !== 0) alive = narrow(alive, size, c);
        size++;
      } else if (blank || c === SEMICOLON) {
        coding = named(alive, size);
        state = blank ? AFTER_CODING : PARAMETER;
      } else state = c === QUOTE ? QUOTED : SKIP; // `gzip\0`: not a token, names nothing
    } else if (state === AFTER_CODING) {
      if (c === SEMICOLON) state = PARAMETER;
      else if (!blank) {
        coding = NONE; // `g zip`
        state = c === QUOTE ? QUOTED : SKIP;
      }
    } else if (state === SKIP) {
      if (c === QUOTE) state = QUOTED;
    } else if (state === QUOTED) {
      if (c === BACKSLASH) state = ESCAPED;
      else if (c === QUOTE) state = SKIP;
    } else if (state === ESCAPED) {
      state = QUOTED;
    } else {
      // The weight: `OWS ";" OWS "q=" qvalue OWS`, where qvalue is 0[.ddd] or 1[.000].
      let next = SKIP;
      if (state === PARAMETER) {
        if (blank) next = PARAMETER;
        else if ((c | 0x20) === 0x71) next = Q;
      } else if (state === Q) {
        if (c === EQUALS) next = WEIGHT;
      } else if (state === WEIGHT) {
        if (c === ZERO || c === ZERO + 1) {
          one = c !== ZERO;
          weight = one ? 1000 : 0;
          next = UNITS;
        }
      } else if (blank) next = AFTER_WEIGHT;
      else if (state === UNITS) {
        if (c === DOT) {
          decimals = 0;
          next = FRACTION;
        }
      } else if (state === FRACTION && c >= ZERO && c <= NINE && decimals < 3 && (!one || c === ZERO)) {
        weight += (c - ZERO) * PLACES[decimals++]!;
        next = FRACTION;
      }
      if (next === SKIP) {
        weight = 0; // a weight that cannot be read refuses its coding
        state = c === QUOTE ? QUOTED : SKIP;
      } else state = next;
    }
  }
  const gzipWeight = gzip !== UNLISTED ? gzip : any !== UNLISTED ? any : 0;
  const identityWeight = identity !== UNLISTED ? identity : any !== UNLISTED ? any : 0;
  return gzipWeight > 0 && gzipWeight >= identityWeight ? 'gzip' : 'identity';
}

/** `alive` without the names whose character at `position` is not `c` (compared in lower case). */
function narrow(alive: number, position: number, c: number): number {
  // `| 0x20` lowers A–Z and leaves '-' and '*' alone; no other tchar lowers onto a name's character.
  const lower = c | 0x20;
  for (let name = 0; name < NAMES.length; name++) {
    if ((alive & (1 << name)) !== 0 && NAMES[name]![position] !== lower) alive &= ~(1 << name);
  }
  return alive;
}

/** The name a token of `size` characters is, given the names it still matched; else NONE. */
function named(alive: number, size: number): number {
  for (let name = 0; name < NAMES.length; name++) {
    if ((alive & (1 << name)) !== 0 && NAMES[name]!.length === size) return name;
  }
  return NONE;
}
