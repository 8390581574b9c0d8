package api

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/href"
)

// Types are the plugin-provided resource types the API serves.
type Types struct {
	Repositories  []RepositoryType
	Remotes       []RemoteType
	Contents      []ContentType
	Publications  []PublicationType
	Distributions []DistributionType
}

// PublicationType is a publications/<plugin>/<endpoint>/ family.
type PublicationType struct {
	Plugin   string
	Endpoint string
	PulpType string
	Fields   []Field
}

// DistributionType is a distributions/<plugin>/<endpoint>/ family.
type DistributionType struct {
	Plugin   string
	Endpoint string
	PulpType string
	// ServeFromPublication: the type serves publications, so it accepts a
	// publication and serves a repository through its latest publication.
	ServeFromPublication bool
	Fields               []Field
}

// RemoteType is a remotes/<plugin>/<endpoint>/ family.
type RemoteType struct {
	Plugin   string
	Endpoint string
	PulpType string
	// Policies are the download policies allowed; empty means all three.
	Policies []string
	Fields   []Field
}

// RepositoryType is a repositories/<plugin>/<endpoint>/ family.
type RepositoryType struct {
	Plugin   string // URL segment and tag, e.g. "file"
	Endpoint string // URL segment, e.g. "file"
	PulpType string // e.g. "file.file"
	// ContentTypes are the pulp_types a version of this repository may hold.
	ContentTypes []string
	// Fields are plugin fields beyond Pulp's repository fields.
	Fields []Field
	// RemoteTypes are the remote types it syncs from; none means no sync/.
	RemoteTypes []string
	// SyncOptions are the plugin's own sync/ parameters beyond remote and mirror.
	SyncOptions []Field
}

// ContentType is a content/<plugin>/<endpoint>/ family.
type ContentType struct {
	Plugin   string
	Endpoint string // e.g. "files"
	PulpType string // e.g. "file.file"
	// RepoKeyFields make two units "the same thing" inside a repository
	// version: adding one replaces the other (Pulp's repo_key_fields).
	RepoKeyFields []string
	Fields        []Field
	// NaturalKey, RelativePathField and DigestField enable POST on the
	// content endpoint: units made from an uploaded artifact, the digest
	// field taking the artifact's sha256. No DigestField, no POST.
	NaturalKey        []string
	RelativePathField string
	DigestField       string
}

// Field is a plugin-declared field of a resource.
type Field struct {
	Name        string
	Type        string // string, integer, boolean, number, object, array
	Required    bool
	Nullable    bool
	Default     any
	Description string
	// Enum lists the allowed values of a string field.
	Enum []string
}

// typeIndex finds types by pulp_type for building hrefs and validating.
type typeIndex struct {
	repos    map[string]RepositoryType
	contents map[string]ContentType
}

func indexTypes(t Types) (typeIndex, error) {
	idx := typeIndex{repos: map[string]RepositoryType{}, contents: map[string]ContentType{}}
	seen := map[string]bool{}
	for _, r := range t.Repositories {
		if r.Plugin == "" || r.Endpoint == "" || r.PulpType == "" {
			return idx, fmt.Errorf("repository type %+v: plugin, endpoint and pulp_type are required", r)
		}
		if _, dup := idx.repos[r.PulpType]; dup || seen["r/"+r.Plugin+"/"+r.Endpoint] {
			return idx, fmt.Errorf("repository type %s declared twice", r.PulpType)
		}
		seen["r/"+r.Plugin+"/"+r.Endpoint] = true
		idx.repos[r.PulpType] = r
	}
	for _, c := range t.Contents {
		if c.Plugin == "" || c.Endpoint == "" || c.PulpType == "" {
			return idx, fmt.Errorf("content type %+v: plugin, endpoint and pulp_type are required", c)
		}
		if _, dup := idx.contents[c.PulpType]; dup || seen["c/"+c.Plugin+"/"+c.Endpoint] {
			return idx, fmt.Errorf("content type %s declared twice", c.PulpType)
		}
		seen["c/"+c.Plugin+"/"+c.Endpoint] = true
		idx.contents[c.PulpType] = c
	}
	return idx, nil
}

// segments derives a plugin and endpoint from a pulp_type no loaded plugin
// declares, so such objects still get an href.
func segments(pulpType string) (string, string) {
	p, e, _ := strings.Cut(pulpType, ".")
	return p, e
}

func (x typeIndex) repoHref(pulpType string, id uuid.UUID) string {
	r, ok := x.repos[pulpType]
	p, e := r.Plugin, r.Endpoint
	if !ok {
		p, e = segments(pulpType)
	}
	return href.Typed(href.Repositories, p, e, id)
}

func (x typeIndex) contentHref(pulpType string, id uuid.UUID) string {
	return x.contentListPath(pulpType) + id.String() + "/"
}

func (x typeIndex) contentListPath(pulpType string) string {
	c, ok := x.contents[pulpType]
	p, e := c.Plugin, c.Endpoint
	if !ok {
		p, e = segments(pulpType)
	}
	return href.APIRoot + href.Content + "/" + p + "/" + e + "/"
}

// base holds the fields every Pulp object has.
type base struct {
	PulpHref        string    `json:"pulp_href" readOnly:"true" format:"uri"`
	PRN             string    `json:"prn" readOnly:"true" doc:"The Pulp Resource Name (PRN)."`
	PulpCreated     time.Time `json:"pulp_created" readOnly:"true" doc:"Timestamp of creation."`
	PulpLastUpdated time.Time `json:"pulp_last_updated" readOnly:"true" doc:"Timestamp of the last time this resource was updated."`
}

func tag(plugin, endpoint string) string {
	title := func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	}
	if plugin == endpoint {
		return title(plugin)
	}
	return title(plugin) + " " + title(endpoint)
}
