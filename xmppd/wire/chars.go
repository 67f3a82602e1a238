package wire

import "unicode/utf8"

// Byte classes for the scanning loops. A zero entry means "ordinary ASCII
// byte that needs no attention", so the inner loops are a table load and a
// compare per byte. Bytes >= 0x80 are non-zero: they start a UTF-8 sequence
// that must be decoded and checked against the XML Char production.
var (
	textClass [256]uint8 // character data
	attrClass [256]uint8 // attribute values
	nameClass [256]uint8 // ASCII name characters
)

const (
	nameStart = 1 << iota // may start an NCName
	nameChar              // may continue an NCName
)

func init() {
	for c := 0; c < 256; c++ {
		if c < 0x20 || c >= 0x80 {
			textClass[c] = 1
			attrClass[c] = 1
		}
	}
	textClass['\t'], textClass['\n'] = 0, 0
	for _, c := range []byte("<&]\r") {
		textClass[c] = 1
	}
	for _, c := range []byte("<&'\"") {
		attrClass[c] = 1
	}
	for c := 'a'; c <= 'z'; c++ {
		nameClass[c] = nameStart | nameChar
		nameClass[c-'a'+'A'] = nameStart | nameChar
	}
	nameClass['_'] = nameStart | nameChar
	for c := '0'; c <= '9'; c++ {
		nameClass[c] = nameChar
	}
	nameClass['-'], nameClass['.'] = nameChar, nameChar
}

// isSpace reports XML white space, production S of XML 1.0 §2.3.
func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// isChar reports whether r (from a multi-byte UTF-8 sequence) is an XML 1.0
// Char (§2.2). Surrogates never get here: utf8.DecodeRune rejects them.
func isChar(r rune) bool {
	return r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= utf8.MaxRune ||
		r == 0x9 || r == 0xA || r == 0xD
}

// isNameStartRune is NameStartChar of XML 1.0 §2.3 for non-ASCII runes.
func isNameStartRune(r rune) bool {
	switch {
	case r >= 0xC0 && r <= 0xD6, r >= 0xD8 && r <= 0xF6, r >= 0xF8 && r <= 0x2FF,
		r >= 0x370 && r <= 0x37D, r >= 0x37F && r <= 0x1FFF, r >= 0x200C && r <= 0x200D,
		r >= 0x2070 && r <= 0x218F, r >= 0x2C00 && r <= 0x2FEF, r >= 0x3001 && r <= 0xD7FF,
		r >= 0xF900 && r <= 0xFDCF, r >= 0xFDF0 && r <= 0xFFFD, r >= 0x10000 && r <= 0xEFFFF:
		return true
	}
	return false
}

// isNameRune is NameChar of XML 1.0 §2.3 for non-ASCII runes.
func isNameRune(r rune) bool {
	return isNameStartRune(r) || r == 0xB7 || r >= 0x300 && r <= 0x36F || r >= 0x203F && r <= 0x2040
}
