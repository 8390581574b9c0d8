package abi

import "encoding/json"

// HostInfo tells a plugin which host calls it (input of describe).
type HostInfo struct {
	Name       string `json:"name"`        // "pulpo"
	Version    string `json:"version"`     // the host's release
	ABIVersion string `json:"abi_version"` // "major.minor" the host implements
}

// DescribeRequest is the input of the describe export.
type DescribeRequest struct {
	Host HostInfo `json:"host"`
}

// Describe is the output of the describe export: everything the host needs to know about a
// plugin before it calls anything else. It must not depend on anything but the plugin's code
// (two calls return the same document).
type Describe struct {
	// ABIVersion is "major.minor" and equals the version of the marker export.
	ABIVersion string `json:"abi_version"`
	// Name is the plugin's name, [a-z][a-z0-9_]{0,31}, unique among a host's plugins. It
	// prefixes every type name the plugin declares ("file" declares "file.file").
	Name string `json:"name"`
	// Version is the plugin's own release, semantic versioning recommended.
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`

	ContentTypes      []ContentType      `json:"content_types"`
	RepositoryTypes   []RepositoryType   `json:"repository_types,omitempty"`
	RemoteTypes       []RemoteType       `json:"remote_types,omitempty"`
	PublicationTypes  []PublicationType  `json:"publication_types,omitempty"`
	DistributionTypes []DistributionType `json:"distribution_types,omitempty"`
	// SyncOptions are the plugin's own sync parameters (beyond mirror), passed in
	// SyncRequest.Options.
	SyncOptions []Field `json:"sync_options,omitempty"`
	// Routes are live API prefixes the plugin answers through handle_route.
	Routes []Route `json:"routes,omitempty"`
}

// ContentType declares one kind of content unit.
type ContentType struct {
	// Name is "<plugin>.<type>" with type [a-z][a-z0-9_]*, e.g. "file.file".
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// EndpointName is the plural used in REST paths (/content/<plugin>/<endpoint_name>/);
	// default "<type>s".
	EndpointName string `json:"endpoint_name,omitempty"`
	// Fields are the unit's fields. Relations are not fields.
	Fields []Field `json:"fields"`
	// NaturalKey names the fields (scalar, required) that identify a unit globally: two
	// units with equal natural keys are the same unit.
	NaturalKey []string `json:"natural_key"`
	// RepoKey names the fields that identify a unit within one repository version: adding a
	// unit replaces the unit with the same repo key. Empty means the natural key.
	RepoKey []string `json:"repo_key,omitempty"`
	// Artifacts says how many artifacts a unit has and where their relative path comes from.
	Artifacts ArtifactSpec `json:"artifacts"`
	// Relations are typed links from a unit of this type to other units.
	Relations []RelationType `json:"relations,omitempty"`
}

// Artifact counts of ArtifactSpec.Count.
const (
	ArtifactsNone = "none"
	ArtifactsOne  = "one"
	ArtifactsMany = "many"
)

// ArtifactSpec declares a content type's artifacts.
type ArtifactSpec struct {
	// Count is "none", "one" or "many".
	Count string `json:"count"`
	// RelativePathField names the string field whose value is the artifact's relative path
	// when Count is "one" (file.file: "relative_path"; container.blob: "digest"). With
	// "many" each DeclarativeArtifact carries its own relative path.
	RelativePathField string `json:"relative_path_field,omitempty"`
	// DigestField optionally names the string field holding the artifact's sha256
	// (lowercase hex) when Count is "one" (file.file: "digest"). A host creates units of
	// such a type from an artifact a user uploaded: the user gives the other fields.
	DigestField string `json:"digest_field,omitempty"`
}

// RelationType declares a link from one content type to another.
type RelationType struct {
	// Name is [a-z][a-z0-9_]*, unique within the content type.
	Name string `json:"name"`
	// To is the target content type's name; it may belong to another plugin.
	To string `json:"to"`
	// Many allows several targets (manifest -> blobs); otherwise at most one (tag -> manifest).
	Many bool `json:"many,omitempty"`
	// Required means a unit is invalid without this relation.
	Required bool `json:"required,omitempty"`
	// Fields are attributes of the link itself (a manifest list entry's platform).
	Fields      []Field `json:"fields,omitempty"`
	Description string  `json:"description,omitempty"`
}

// Field types of Field.Type, a subset of JSON Schema's.
const (
	TypeString  = "string"
	TypeInteger = "integer"
	TypeBoolean = "boolean"
	TypeObject  = "object"
	TypeArray   = "array"
)

// Field declares one field of a content unit, repository, remote, publication, distribution
// or sync option.
type Field struct {
	// Name is [a-z][a-z0-9_]*.
	Name string `json:"name"`
	// Type is string, integer, boolean, object or array.
	Type string `json:"type"`
	// Items is the element type of an array (any of the types above); default string.
	Items       string `json:"items,omitempty"`
	Required    bool   `json:"required,omitempty"`
	Description string `json:"description,omitempty"`
	// Enum lists the allowed values of a string field.
	Enum []string `json:"enum,omitempty"`
	// Default is the JSON value the host uses when the field is absent.
	Default json.RawMessage `json:"default,omitempty"`
}

// RepositoryType declares a repository type ("file.file").
type RepositoryType struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// ContentTypes lists the content types a version of this repository may hold.
	ContentTypes []string `json:"content_types"`
	// RemoteTypes lists the remote types this repository syncs from.
	RemoteTypes []string `json:"remote_types,omitempty"`
	Fields      []Field  `json:"fields,omitempty"`
}

// Download policies of remotes.
const (
	PolicyImmediate = "immediate"
	PolicyOnDemand  = "on_demand"
	PolicyStreamed  = "streamed"
)

// RemoteType declares a remote type. The host owns url, policy, TLS, proxy, auth, rate
// limits and timeouts; Fields are the plugin's additions (container: upstream_name).
type RemoteType struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Policies lists the supported download policies; empty means all three.
	Policies []string `json:"policies,omitempty"`
	Fields   []Field  `json:"fields,omitempty"`
}

// PublicationType declares a publication type.
type PublicationType struct {
	Name        string  `json:"name"`
	Description string  `json:"description,omitempty"`
	Fields      []Field `json:"fields,omitempty"`
}

// DistributionType declares a distribution type.
type DistributionType struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// ServeFromPublication means a distribution serves publications; otherwise it serves a
	// repository version's content by relative path.
	ServeFromPublication bool    `json:"serve_from_publication,omitempty"`
	Fields               []Field `json:"fields,omitempty"`
}

// Route declares a live API path prefix the plugin answers, e.g. "/v2/".
type Route struct {
	// Prefix starts and ends with "/" and is not under "/pulp/".
	Prefix      string `json:"prefix"`
	Description string `json:"description,omitempty"`
	// Protocol, when set, says the route speaks a protocol the host may serve natively
	// with the plugin's types in the roles the protocol names, calling no export per
	// request. A host that does not implement the protocol sends the route's requests to
	// handle_route as for any route. Known: ProtocolOCIDistribution.
	Protocol string `json:"protocol,omitempty"`
	// Registry gives the types' roles for ProtocolOCIDistribution.
	Registry *RegistryRoles `json:"registry,omitempty"`
}

// ProtocolOCIDistribution is the OCI distribution API (pull, push, content discovery and
// management) under the route's prefix, e.g. /v2/.
const ProtocolOCIDistribution = "oci-distribution"

// RegistryRoles names the plugin's types that play the roles of the OCI distribution
// protocol. Each content type follows the protocol's conventions (spec section 9.1):
// blobs and manifests are named by a required string field "digest" (their natural key
// and their one artifact's relative path), manifests carry "media_type", tags carry
// "name" and "digest" (the tagged manifest's) and exactly one relation to the manifest
// type. The host builds pushed tags from these fields alone.
type RegistryRoles struct {
	BlobType     string `json:"blob_type"`
	ManifestType string `json:"manifest_type"`
	TagType      string `json:"tag_type"`
	// DistributionType is the type of distributions serving repositories by base_path.
	DistributionType string `json:"distribution_type"`
	// PushRepositoryType is the repository type pushes create and fill; empty: no push.
	// Pushing manifests needs the content_from_upload export.
	PushRepositoryType string `json:"push_repository_type,omitempty"`
}
