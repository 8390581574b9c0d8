package sdk

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/pulpo/pulpo/abi"
)

// appendEmitRequest appends the JSON of abi.EmitRequest{Content: batch} to buf. It writes
// what encoding/json would (minus HTML escaping), without reflection: in a WebAssembly
// guest, reflection-driven encoding of the envelope cost more than the content itself.
// Fields, keys and relation fields are copied as they are (they came from json.Marshal).
func appendEmitRequest(buf []byte, batch []abi.DeclarativeContent) []byte {
	buf = append(buf, `{"content":[`...)
	for i, dc := range batch {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendDeclarative(buf, dc)
	}
	return append(buf, "]}"...)
}

func appendDeclarative(buf []byte, dc abi.DeclarativeContent) []byte {
	buf = append(buf, `{"type":`...)
	buf = appendString(buf, dc.Type)
	buf = append(buf, `,"fields":`...)
	buf = appendRaw(buf, dc.Fields)
	if len(dc.Artifacts) > 0 {
		buf = append(buf, `,"artifacts":[`...)
		for i, a := range dc.Artifacts {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendArtifact(buf, a)
		}
		buf = append(buf, ']')
	}
	if len(dc.Relations) > 0 {
		buf = append(buf, `,"relations":[`...)
		for i, r := range dc.Relations {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"name":`...)
			buf = appendString(buf, r.Name)
			buf = append(buf, `,"to":{"type":`...)
			buf = appendString(buf, r.To.Type)
			buf = append(buf, `,"key":`...)
			buf = appendRaw(buf, r.To.Key)
			buf = append(buf, '}')
			if len(r.Fields) > 0 {
				buf = append(buf, `,"fields":`...)
				buf = appendRaw(buf, r.Fields)
			}
			buf = append(buf, '}')
		}
		buf = append(buf, ']')
	}
	return append(buf, '}')
}

func appendArtifact(buf []byte, a abi.DeclarativeArtifact) []byte {
	buf = append(buf, `{"relative_path":`...)
	buf = appendString(buf, a.RelativePath)
	buf = append(buf, `,"url":`...)
	buf = appendString(buf, a.URL)
	if a.SHA256 != "" {
		buf = append(buf, `,"sha256":`...)
		buf = appendString(buf, a.SHA256)
	}
	if a.Size != 0 {
		buf = append(buf, `,"size":`...)
		buf = strconv.AppendInt(buf, a.Size, 10)
	}
	if len(a.Digests) > 0 {
		keys := make([]string, 0, len(a.Digests))
		for k := range a.Digests {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf = append(buf, `,"digests":{`...)
		for i, k := range keys {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, k)
			buf = append(buf, ':')
			buf = appendString(buf, a.Digests[k])
		}
		buf = append(buf, '}')
	}
	if a.Deferred {
		buf = append(buf, `,"deferred":true`...)
	}
	return append(buf, '}')
}

// appendRaw appends a JSON value produced by json.Marshal; an empty one is null. Anything
// with insignificant whitespace (hand-built values) is compacted first.
func appendRaw(buf []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(buf, "null"...)
	}
	if bytes.ContainsAny(raw, " \t\r\n") {
		var c bytes.Buffer
		if json.Compact(&c, raw) == nil {
			return append(buf, c.Bytes()...)
		}
	}
	return append(buf, raw...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string: quotes, backslashes and control characters are
// escaped, invalid UTF-8 becomes U+FFFD, as encoding/json does.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
