package main

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// tagFilter selects tags as pulp_container's filter_resources does: a tag is kept when it
// matches one of the include patterns (or there are none) and none of the exclude
// patterns. Patterns are Python fnmatch globs, as Pulp's are: * and ? and [...] with [!...]
// for negation; they are matched with path.Match after turning [! into [^. Tags never
// hold "/", so path.Match's refusal to let * cross a "/" changes nothing.
type tagFilter struct {
	includes, excludes []string
}

// newTagFilter checks and converts the patterns. Entries of includes that are manifest
// digests ("sha256:<hex>") are not patterns: they are returned apart, as manifests to sync
// by digest (pulp_container 2.28).
func newTagFilter(includes, excludes []string) (tagFilter, []string, error) {
	var f tagFilter
	var digests []string
	for _, p := range includes {
		if strings.HasPrefix(p, "sha256:") || strings.HasPrefix(p, "sha512:") {
			if err := checkDigest(p); err != nil {
				return f, nil, fmt.Errorf("includes: %w", err)
			}
			digests = append(digests, p)
			continue
		}
		g, err := glob(p)
		if err != nil {
			return f, nil, fmt.Errorf("include pattern: %w", err)
		}
		f.includes = append(f.includes, g)
	}
	for _, p := range excludes {
		g, err := glob(p)
		if err != nil {
			return f, nil, fmt.Errorf("exclude pattern: %w", err)
		}
		f.excludes = append(f.excludes, g)
	}
	return f, digests, nil
}

// glob converts an fnmatch pattern to path.Match syntax and checks it.
func glob(p string) (string, error) {
	g := strings.ReplaceAll(p, "[!", "[^")
	// path.Match reports a malformed pattern only when matching reaches the bad part; a
	// name made of the pattern's own characters reaches most of it, and "" the rest.
	for _, name := range []string{"", p} {
		if _, err := path.Match(g, name); err != nil {
			return "", fmt.Errorf("%q: %w", p, err)
		}
	}
	return g, nil
}

// filtered reports whether the filter has any pattern (a filter without is not applied).
func (f tagFilter) filtered() bool { return len(f.includes) > 0 || len(f.excludes) > 0 }

// included reports whether name passes the include patterns (all names do when there are
// none).
func (f tagFilter) included(name string) bool {
	if len(f.includes) == 0 {
		return true
	}
	return anyMatch(f.includes, name)
}

// excluded reports whether name matches an exclude pattern.
func (f tagFilter) excluded(name string) bool { return anyMatch(f.excludes, name) }

// keep reports whether a tag is synced.
func (f tagFilter) keep(name string) bool { return f.included(name) && !f.excluded(name) }

func anyMatch(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// companionRE matches the tags cosign gives the signature, attestation and SBOM of a
// manifest: "sha256-<hex>" (the v3 form, an index of them), optionally with ".sig", ".att"
// or ".sbom".
var companionRE = regexp.MustCompile(`^sha256-([a-f0-9]{64})(\.sig|\.att|\.sbom)?$`) //nolint:gochecknoglobals // read-only

// companionOf returns the digest of the manifest a cosign companion tag belongs to.
func companionOf(tag string) (string, bool) {
	m := companionRE.FindStringSubmatch(tag)
	if m == nil {
		return "", false
	}
	return "sha256:" + m[1], true
}

// tagRE is a valid tag (distribution-spec): tags become URL path segments and fetch names.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`) //nolint:gochecknoglobals // read-only

// nameRE is a valid repository name (distribution-spec).
var nameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`) //nolint:gochecknoglobals // read-only

// nextLink returns the target of the rel="next" link of a Link header (RFC 8288, which
// replaced RFC 5988), resolved against the URL of the response that carried it; "" when
// there is none. The host joins repeated headers with ", ", which this parses too.
func nextLink(header, current string) (string, error) {
	s := header
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return "", nil
		}
		if s[0] != '<' {
			return "", fmt.Errorf("link header %q: want <uri-reference>", header)
		}
		end := strings.IndexByte(s, '>')
		if end < 0 {
			return "", fmt.Errorf("link header %q: unterminated <", header)
		}
		target := s[1:end]
		s = s[end+1:]
		var rel string
		for {
			s = strings.TrimLeft(s, " \t")
			if !strings.HasPrefix(s, ";") {
				break
			}
			s = strings.TrimLeft(s[1:], " \t")
			n := strings.IndexAny(s, "=;,")
			if n < 0 {
				n = len(s)
			}
			name := strings.ToLower(strings.TrimSpace(s[:n]))
			s = s[n:]
			var val string
			if strings.HasPrefix(s, "=") {
				s = strings.TrimLeft(s[1:], " \t")
				if strings.HasPrefix(s, `"`) {
					end := strings.IndexByte(s[1:], '"')
					if end < 0 {
						return "", fmt.Errorf("link header %q: unterminated quoted string", header)
					}
					val, s = s[1:end+1], s[end+2:]
				} else {
					n := strings.IndexAny(s, ";,")
					if n < 0 {
						n = len(s)
					}
					val, s = strings.TrimSpace(s[:n]), s[n:]
				}
			}
			if name == "rel" {
				rel = val
			}
		}
		// rel may list several relation types, space-separated.
		for _, r := range strings.Fields(rel) {
			if strings.EqualFold(r, "next") {
				base, err := url.Parse(current)
				if err != nil {
					return "", fmt.Errorf("link header: %w", err)
				}
				u, err := base.Parse(target)
				if err != nil {
					return "", fmt.Errorf("link header %q: %w", header, err)
				}
				// Resolving is laxer than parsing ("//0::0" resolves to a host with a
				// bad port), so the result must parse on its own to be fetched.
				next := u.String()
				if _, err := url.Parse(next); err != nil {
					return "", fmt.Errorf("link header %q: %w", header, err)
				}
				return next, nil
			}
		}
	}
}
