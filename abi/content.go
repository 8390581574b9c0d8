package abi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strings"
)

// DeclarativeContent is one content unit as a first stage declares it: what the unit is,
// where its artifacts can be downloaded, and how it relates to other units. The host turns
// it into stored content, artifacts and relations; no artifact byte passes through a plugin.
type DeclarativeContent struct {
	// Type is a content type the plugin declared, e.g. "file.file".
	Type string `json:"type"`
	// Fields is a JSON object holding the unit's fields, natural key included.
	Fields json.RawMessage `json:"fields"`
	// Artifacts lists the unit's artifacts: exactly one for count "one", none for "none".
	Artifacts []DeclarativeArtifact `json:"artifacts,omitempty"`
	// Relations link the unit to other units.
	Relations []Relation `json:"relations,omitempty"`
}

// DeclarativeArtifact names an artifact and where to get it.
type DeclarativeArtifact struct {
	// RelativePath is the artifact's path within the unit (and within a pass-through
	// publication): a clean relative path, no leading "/", no "." or ".." segment. For count
	// "one" it equals the value of the type's relative_path_field.
	RelativePath string `json:"relative_path"`
	// URL is where the host downloads the artifact, with the remote's TLS, proxy and auth.
	URL string `json:"url"`
	// SHA256 is the expected lowercase hex digest, when the upstream metadata gives it.
	SHA256 string `json:"sha256,omitempty"`
	// Size is the expected size in bytes; 0 means unknown.
	Size int64 `json:"size,omitempty"`
	// Digests holds other expected digests by algorithm: md5, sha1, sha224, sha384, sha512.
	Digests map[string]string `json:"digests,omitempty"`
	// Deferred asks the host to record where the artifact is without downloading it now
	// (policies on_demand and streamed).
	Deferred bool `json:"deferred,omitempty"`
	// Headers are extra request headers for the host's download of this artifact, at sync
	// or later on demand: lower-case names, e.g. accept for a registry manifest. Names the
	// host owns (ForbiddenArtifactHeader) are refused.
	Headers map[string]string `json:"headers,omitempty"`
}

// ForbiddenArtifactHeader reports whether an artifact may not set header name (lower
// case): the host owns credentials, ranges, framing and the connection.
func ForbiddenArtifactHeader(name string) bool {
	switch name {
	case "authorization", "proxy-authorization", "cookie", "host", "range", "content-length",
		"transfer-encoding", "connection", "te", "trailer", "upgrade", "keep-alive", "proxy-connection":
		return true
	}
	return false
}

// checkHeader reports what is wrong with an artifact request header, or "".
func checkHeader(name, value string) string {
	if name == "" || name != strings.ToLower(name) {
		return "name must be lower case and not empty"
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return "name is not an HTTP token"
		}
	}
	if ForbiddenArtifactHeader(name) {
		return "the host owns this header"
	}
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return "value holds a control character"
		}
	}
	return ""
}

// Relation links a unit to another unit. The target is emitted in the same call (earlier or
// later) or already known to the host; the host resolves relations once both ends are saved.
type Relation struct {
	// Name is a relation the unit's content type declared.
	Name string `json:"name"`
	// To identifies the target unit.
	To ContentRef `json:"to"`
	// Fields is a JSON object with the link's own attributes, if the relation declares any.
	Fields json.RawMessage `json:"fields,omitempty"`
}

// ContentRef identifies a unit by type and natural key.
type ContentRef struct {
	Type string `json:"type"`
	// Key is a JSON object holding exactly the type's natural key fields.
	Key json.RawMessage `json:"key"`
}

// Content is a stored unit as the host reports it (content_lookup, the publish listing).
type Content struct {
	Type      string            `json:"type"`
	Fields    json.RawMessage   `json:"fields"`
	Artifacts []ContentArtifact `json:"artifacts,omitempty"`
}

// ContentArtifact is a stored unit's artifact.
type ContentArtifact struct {
	RelativePath string `json:"relative_path"`
	SHA256       string `json:"sha256,omitempty"`
	Size         int64  `json:"size,omitempty"`
	// Downloaded is false for an artifact known only by its remote location (on_demand).
	Downloaded bool `json:"downloaded,omitempty"`
}

// CleanRelativePath reports whether p is a clean relative path as the spec requires for
// artifact and metadata paths: not empty, no leading "/", no empty, "." or ".." segment, no
// backslash or NUL.
func CleanRelativePath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	if path.Clean(p) != p {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." || seg == "" {
			return false
		}
	}
	return true
}

// CheckContent checks one emitted unit against d: the type is declared, the fields are an
// object holding the natural key, the artifact count and paths match the type, and every
// relation is declared. It does not check field types beyond that; the host's content
// saver does.
func (d *Describe) CheckContent(dc DeclarativeContent) error {
	ct, ok := d.ContentTypeByName(dc.Type)
	if !ok {
		return fmt.Errorf("content type %q is not declared by plugin %q", dc.Type, d.Name)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(dc.Fields, &fields); err != nil || fields == nil {
		return fmt.Errorf("%s: fields must be a JSON object", dc.Type)
	}
	for _, k := range ct.NaturalKey {
		if v, ok := fields[k]; !ok || string(v) == "null" {
			return fmt.Errorf("%s: natural key field %q is missing", dc.Type, k)
		}
	}
	switch ct.Artifacts.Count {
	case ArtifactsNone:
		if len(dc.Artifacts) != 0 {
			return fmt.Errorf("%s: type has no artifacts, got %d", dc.Type, len(dc.Artifacts))
		}
	case ArtifactsOne:
		if len(dc.Artifacts) != 1 {
			return fmt.Errorf("%s: type has one artifact, got %d", dc.Type, len(dc.Artifacts))
		}
		var rp string
		if err := json.Unmarshal(fields[ct.Artifacts.RelativePathField], &rp); err != nil || rp != dc.Artifacts[0].RelativePath {
			return fmt.Errorf("%s: artifact relative_path %q must equal field %q", dc.Type, dc.Artifacts[0].RelativePath, ct.Artifacts.RelativePathField)
		}
	}
	for i, a := range dc.Artifacts {
		if !CleanRelativePath(a.RelativePath) {
			return fmt.Errorf("%s: artifacts[%d]: relative_path %q is not a clean relative path", dc.Type, i, a.RelativePath)
		}
		if a.URL == "" {
			return fmt.Errorf("%s: artifacts[%d]: url is empty", dc.Type, i)
		}
		if a.Size < 0 {
			return fmt.Errorf("%s: artifacts[%d]: negative size", dc.Type, i)
		}
		for name, value := range a.Headers {
			if msg := checkHeader(name, value); msg != "" {
				return fmt.Errorf("%s: artifacts[%d]: headers %q: %s", dc.Type, i, name, msg)
			}
		}
	}
	for i, r := range dc.Relations {
		var rt *RelationType
		for j := range ct.Relations {
			if ct.Relations[j].Name == r.Name {
				rt = &ct.Relations[j]
			}
		}
		if rt == nil {
			return fmt.Errorf("%s: relations[%d]: relation %q is not declared", dc.Type, i, r.Name)
		}
		if r.To.Type != rt.To {
			return fmt.Errorf("%s: relations[%d] %q: target type %q, declared %q", dc.Type, i, r.Name, r.To.Type, rt.To)
		}
		if key := bytes.TrimSpace(r.To.Key); len(key) == 0 || key[0] != '{' {
			return fmt.Errorf("%s: relations[%d] %q: key must be a JSON object", dc.Type, i, r.Name)
		}
	}
	return nil
}
