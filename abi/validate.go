package abi

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

var (
	pluginNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	identRE      = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	typeNameRE   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}\.[a-z][a-z0-9_]{0,63}$`)
)

// ValidPluginName reports whether s is a well-formed plugin name.
func ValidPluginName(s string) bool { return pluginNameRE.MatchString(s) }

// ValidTypeName reports whether s is a well-formed "<plugin>.<type>" name.
func ValidTypeName(s string) bool { return typeNameRE.MatchString(s) }

// Validate checks d against the rules of spec/v1.md section "describe". It reports every
// problem it finds, joined, each naming the offending element.
func (d *Describe) Validate() error {
	v := &validator{}
	if _, err := ParseVersion(d.ABIVersion); err != nil {
		v.addf("abi_version: %v", err)
	}
	if !ValidPluginName(d.Name) {
		v.addf("name %q: want [a-z][a-z0-9_]{0,31}", d.Name)
	}
	if d.Version == "" {
		v.addf("version: must not be empty")
	}
	if len(d.ContentTypes) == 0 {
		v.addf("content_types: a plugin declares at least one content type")
	}
	content := map[string]bool{}
	for i, ct := range d.ContentTypes {
		at := fmt.Sprintf("content_types[%d] %q", i, ct.Name)
		v.typeName(at, ct.Name, d.Name, content)
		v.contentType(at, ct)
	}
	for i, ct := range d.ContentTypes {
		for j, r := range ct.Relations {
			if !ValidTypeName(r.To) {
				v.addf("content_types[%d] %q: relations[%d] %q: to %q is not a type name", i, ct.Name, j, r.Name, r.To)
			} else if strings.HasPrefix(r.To, d.Name+".") && !content[r.To] {
				v.addf("content_types[%d] %q: relations[%d] %q: to %q is not declared", i, ct.Name, j, r.Name, r.To)
			}
		}
	}
	remotes := map[string]bool{}
	for i, rt := range d.RemoteTypes {
		at := fmt.Sprintf("remote_types[%d] %q", i, rt.Name)
		v.typeName(at, rt.Name, d.Name, remotes)
		for _, p := range rt.Policies {
			if p != PolicyImmediate && p != PolicyOnDemand && p != PolicyStreamed {
				v.addf("%s: unknown policy %q", at, p)
			}
		}
		v.fields(at, rt.Fields)
	}
	repos := map[string]bool{}
	for i, rt := range d.RepositoryTypes {
		at := fmt.Sprintf("repository_types[%d] %q", i, rt.Name)
		v.typeName(at, rt.Name, d.Name, repos)
		if len(rt.ContentTypes) == 0 {
			v.addf("%s: content_types must not be empty", at)
		}
		for _, c := range rt.ContentTypes {
			if !content[c] {
				v.addf("%s: content type %q is not declared", at, c)
			}
		}
		for _, r := range rt.RemoteTypes {
			if !remotes[r] {
				v.addf("%s: remote type %q is not declared", at, r)
			}
		}
		v.fields(at, rt.Fields)
	}
	pubs := map[string]bool{}
	for i, pt := range d.PublicationTypes {
		at := fmt.Sprintf("publication_types[%d] %q", i, pt.Name)
		v.typeName(at, pt.Name, d.Name, pubs)
		v.fields(at, pt.Fields)
	}
	dists := map[string]bool{}
	for i, dt := range d.DistributionTypes {
		at := fmt.Sprintf("distribution_types[%d] %q", i, dt.Name)
		v.typeName(at, dt.Name, d.Name, dists)
		v.fields(at, dt.Fields)
	}
	v.fields("sync_options", d.SyncOptions)
	for _, f := range d.SyncOptions {
		if f.Name == "mirror" {
			v.addf("sync_options: %q is defined by the host", f.Name)
		}
	}
	prefixes := map[string]bool{}
	for i, r := range d.Routes {
		at := fmt.Sprintf("routes[%d] %q", i, r.Prefix)
		switch {
		case len(r.Prefix) < 2 || !strings.HasPrefix(r.Prefix, "/") || !strings.HasSuffix(r.Prefix, "/"):
			v.addf("%s: a prefix starts and ends with / and is not /", at)
		case strings.HasPrefix(r.Prefix, "/pulp/"):
			v.addf("%s: /pulp/ belongs to the host", at)
		case strings.Contains(r.Prefix, "//") || strings.Contains(r.Prefix, "/../") || strings.Contains(r.Prefix, "/./"):
			v.addf("%s: not a clean path", at)
		case prefixes[r.Prefix]:
			v.addf("%s: declared twice", at)
		}
		prefixes[r.Prefix] = true
		v.route(at, r, d, repos, dists)
	}
	return v.err()
}

// route checks a route's protocol declaration: the roles of ProtocolOCIDistribution name
// declared types that follow the protocol's conventions. Other protocols are left to the
// hosts that know them.
func (v *validator) route(at string, r Route, d *Describe, repos, dists map[string]bool) {
	if r.Protocol != ProtocolOCIDistribution {
		if r.Registry != nil {
			v.addf("%s: registry needs protocol %q", at, ProtocolOCIDistribution)
		}
		return
	}
	if r.Registry == nil {
		v.addf("%s: protocol %q needs registry roles", at, r.Protocol)
		return
	}
	roles := r.Registry
	digestType := func(role, name string) (ContentType, bool) {
		ct, ok := d.ContentTypeByName(name)
		if !ok {
			v.addf("%s: registry %s %q is not a declared content type", at, role, name)
			return ct, false
		}
		f, _ := fieldOf(ct, "digest")
		if f.Type != TypeString || !f.Required || len(ct.NaturalKey) != 1 || ct.NaturalKey[0] != "digest" ||
			ct.Artifacts.Count != ArtifactsOne || ct.Artifacts.RelativePathField != "digest" {
			v.addf("%s: registry %s %q: want natural key [digest] and one artifact at relative path digest", at, role, name)
		}
		return ct, true
	}
	digestType("blob_type", roles.BlobType)
	if mt, ok := digestType("manifest_type", roles.ManifestType); ok {
		if f, _ := fieldOf(mt, "media_type"); f.Type != TypeString {
			v.addf("%s: registry manifest_type %q: want a string field media_type", at, roles.ManifestType)
		}
	}
	if tt, ok := d.ContentTypeByName(roles.TagType); !ok {
		v.addf("%s: registry tag_type %q is not a declared content type", at, roles.TagType)
	} else {
		n := 0
		for _, rel := range tt.Relations {
			if rel.To == roles.ManifestType && !rel.Many {
				n++
			}
		}
		name, _ := fieldOf(tt, "name")
		digest, _ := fieldOf(tt, "digest")
		if name.Type != TypeString || digest.Type != TypeString || n != 1 {
			v.addf("%s: registry tag_type %q: want string fields name and digest and one single relation to %q", at, roles.TagType, roles.ManifestType)
		}
	}
	if !dists[roles.DistributionType] {
		v.addf("%s: registry distribution_type %q is not declared", at, roles.DistributionType)
	}
	if roles.PushRepositoryType != "" && !repos[roles.PushRepositoryType] {
		v.addf("%s: registry push_repository_type %q is not declared", at, roles.PushRepositoryType)
	}
}

func fieldOf(ct ContentType, name string) (Field, bool) {
	for _, f := range ct.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

type validator struct{ errs []error }

func (v *validator) addf(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf(format, args...))
}

func (v *validator) err() error { return errors.Join(v.errs...) }

func (v *validator) typeName(at, name, plugin string, seen map[string]bool) {
	switch {
	case !ValidTypeName(name):
		v.addf("%s: want <plugin>.<type> in [a-z0-9_]", at)
	case !strings.HasPrefix(name, plugin+"."):
		v.addf("%s: must start with the plugin name %q", at, plugin+".")
	case seen[name]:
		v.addf("%s: declared twice", at)
	}
	seen[name] = true
}

func (v *validator) contentType(at string, ct ContentType) {
	byName := v.fields(at, ct.Fields)
	if len(ct.NaturalKey) == 0 {
		v.addf("%s: natural_key must name at least one field", at)
	}
	for _, k := range ct.NaturalKey {
		f, ok := byName[k]
		switch {
		case !ok:
			v.addf("%s: natural_key field %q is not declared", at, k)
		case !f.Required:
			v.addf("%s: natural_key field %q must be required", at, k)
		case f.Type == TypeObject || f.Type == TypeArray:
			v.addf("%s: natural_key field %q must be a string, integer or boolean", at, k)
		}
	}
	for _, k := range ct.RepoKey {
		if _, ok := byName[k]; !ok {
			v.addf("%s: repo_key field %q is not declared", at, k)
		}
	}
	switch ct.Artifacts.Count {
	case ArtifactsNone, ArtifactsMany:
		if ct.Artifacts.Count == ArtifactsNone && ct.Artifacts.RelativePathField != "" {
			v.addf("%s: artifacts: relative_path_field needs count one", at)
		}
		if ct.Artifacts.DigestField != "" {
			v.addf("%s: artifacts: digest_field needs count one", at)
		}
	case ArtifactsOne:
		f, ok := byName[ct.Artifacts.RelativePathField]
		if !ok || f.Type != TypeString {
			v.addf("%s: artifacts: relative_path_field %q must name a string field", at, ct.Artifacts.RelativePathField)
		}
		if d := ct.Artifacts.DigestField; d != "" {
			if f, ok := byName[d]; !ok || f.Type != TypeString || !f.Required || d == ct.Artifacts.RelativePathField {
				v.addf("%s: artifacts: digest_field %q must name another required string field", at, d)
			}
		}
	default:
		v.addf("%s: artifacts: count %q: want none, one or many", at, ct.Artifacts.Count)
	}
	rels := map[string]bool{}
	for j, r := range ct.Relations {
		rat := fmt.Sprintf("%s: relations[%d] %q", at, j, r.Name)
		switch {
		case !identRE.MatchString(r.Name):
			v.addf("%s: want [a-z][a-z0-9_]*", rat)
		case rels[r.Name] || byName[r.Name].Name != "":
			v.addf("%s: name used twice", rat)
		}
		rels[r.Name] = true
		v.fields(rat, r.Fields)
	}
}

func (v *validator) fields(at string, fs []Field) map[string]Field {
	byName := make(map[string]Field, len(fs))
	for i, f := range fs {
		fat := fmt.Sprintf("%s: fields[%d] %q", at, i, f.Name)
		if !identRE.MatchString(f.Name) {
			v.addf("%s: want [a-z][a-z0-9_]*", fat)
		}
		if _, dup := byName[f.Name]; dup {
			v.addf("%s: declared twice", fat)
		}
		byName[f.Name] = f
		if !validFieldType(f.Type) {
			v.addf("%s: type %q: want string, integer, boolean, object or array", fat, f.Type)
		}
		if f.Items != "" && (f.Type != TypeArray || !validFieldType(f.Items)) {
			v.addf("%s: items %q needs type array and a valid element type", fat, f.Items)
		}
		if len(f.Enum) > 0 && f.Type != TypeString {
			v.addf("%s: enum needs type string", fat)
		}
		if len(f.Default) > 0 && !json.Valid(f.Default) {
			v.addf("%s: default is not JSON", fat)
		}
	}
	return byName
}

func validFieldType(t string) bool {
	switch t {
	case TypeString, TypeInteger, TypeBoolean, TypeObject, TypeArray:
		return true
	}
	return false
}

// ContentTypeByName returns the declared content type called name.
func (d *Describe) ContentTypeByName(name string) (ContentType, bool) {
	for _, ct := range d.ContentTypes {
		if ct.Name == name {
			return ct, true
		}
	}
	return ContentType{}, false
}

// RequiredExports returns the exports d obliges the plugin to provide: describe always,
// sync_first_stage with a remote type, publish with a publication type, handle_route with
// routes.
func (d *Describe) RequiredExports() []string {
	out := []string{ExportDescribe}
	if len(d.RemoteTypes) > 0 {
		out = append(out, ExportSyncFirstStage)
	}
	if len(d.PublicationTypes) > 0 {
		out = append(out, ExportPublish)
	}
	if len(d.Routes) > 0 {
		out = append(out, ExportHandleRoute)
	}
	return out
}
