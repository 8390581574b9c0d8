package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/internal/bridge"
)

// Plugin declares a plugin. Register it once, from init.
type Plugin struct {
	// Name is the plugin's name; every type name starts with Name + ".".
	Name        string
	Version     string
	Description string

	// Types are the content types, built with ContentType.
	Types []Type

	RepositoryTypes   []abi.RepositoryType
	RemoteTypes       []abi.RemoteType
	PublicationTypes  []abi.PublicationType
	DistributionTypes []abi.DistributionType
	// SyncOptions are the plugin's own sync parameters; read them with Sync.Options.
	SyncOptions []abi.Field

	// Sync is the first stage of a sync: fetch metadata, emit declarative content. Required
	// when RemoteTypes is not empty.
	Sync func(ctx context.Context, s *Sync) error
	// Publish lays out a publication. Required when PublicationTypes is not empty.
	Publish func(ctx context.Context, p *Publish) error
	// Routes are the live API prefixes the plugin answers.
	Routes []Route
	// FromUpload reads bytes a client uploaded (a pushed manifest) as a unit of one of
	// the plugin's types: content_from_upload. Optional; without it the export answers
	// unimplemented.
	FromUpload func(ctx context.Context, u *Upload) (Unit, error)
}

// Type is a content type bound to the Go type that holds its fields.
type Type struct {
	spec   abi.ContentType
	goType reflect.Type
	err    error
}

// Spec returns the content type as declared to the host.
func (t Type) Spec() abi.ContentType { return t.spec }

// TypeOption configures a content type.
type TypeOption func(*abi.ContentType)

// ContentType declares the content type name ("<plugin>.<type>") whose units are values of
// T. Fields come from T's exported fields (see the json, pulpo and desc tags); natural key
// fields are made required.
func ContentType[T any](name string, opts ...TypeOption) Type {
	gt := reflect.TypeFor[T]()
	fields, err := fieldsOf(gt)
	ct := abi.ContentType{Name: name, Fields: fields, Artifacts: abi.ArtifactSpec{Count: abi.ArtifactsNone}}
	for _, o := range opts {
		o(&ct)
	}
	for i, f := range ct.Fields {
		if slices.Contains(ct.NaturalKey, f.Name) {
			ct.Fields[i].Required = true
		}
	}
	return Type{spec: ct, goType: gt, err: err}
}

// NaturalKey names the fields that identify a unit globally.
func NaturalKey(fields ...string) TypeOption {
	return func(ct *abi.ContentType) { ct.NaturalKey = fields }
}

// RepoKey names the fields that identify a unit within a repository version.
func RepoKey(fields ...string) TypeOption {
	return func(ct *abi.ContentType) { ct.RepoKey = fields }
}

// OneArtifact gives each unit exactly one artifact whose relative path is the value of the
// string field relativePathField.
func OneArtifact(relativePathField string) TypeOption {
	return func(ct *abi.ContentType) {
		ct.Artifacts = abi.ArtifactSpec{Count: abi.ArtifactsOne, RelativePathField: relativePathField}
	}
}

// DigestField names the string field holding the one artifact's sha256, so the host can
// create units from uploaded artifacts (use after OneArtifact).
func DigestField(field string) TypeOption {
	return func(ct *abi.ContentType) { ct.Artifacts.DigestField = field }
}

// ManyArtifacts lets each unit carry any number of artifacts.
func ManyArtifacts() TypeOption {
	return func(ct *abi.ContentType) { ct.Artifacts = abi.ArtifactSpec{Count: abi.ArtifactsMany} }
}

// Relates declares a relation from this content type to another.
func Relates(r abi.RelationType) TypeOption {
	return func(ct *abi.ContentType) { ct.Relations = append(ct.Relations, r) }
}

// Description sets the content type's description.
func Description(text string) TypeOption {
	return func(ct *abi.ContentType) { ct.Description = text }
}

// EndpointName sets the plural used in REST paths.
func EndpointName(plural string) TypeOption {
	return func(ct *abi.ContentType) { ct.EndpointName = plural }
}

// registered is the plugin of this module, set once by Register.
var registered *plugin //nolint:gochecknoglobals // one plugin per module, like its exports

type plugin struct {
	Plugin
	describe abi.Describe
	byGoType map[reflect.Type]*abi.ContentType
	byName   map[string]*abi.ContentType
}

// Register makes p the module's plugin. It panics when called twice or when a content type
// cannot be derived from its Go type: both are programming errors seen at the first test.
// Everything else about p is checked by the host (and by sdktest) through describe.
func Register(p Plugin) {
	if registered != nil {
		panic(fmt.Sprintf("sdk.Register: plugin %q already registered", registered.Name))
	}
	rp := &plugin{Plugin: p, byGoType: map[reflect.Type]*abi.ContentType{}, byName: map[string]*abi.ContentType{}}
	d := abi.Describe{
		ABIVersion:        abi.Current().String(),
		Name:              p.Name,
		Version:           p.Version,
		Description:       p.Description,
		ContentTypes:      []abi.ContentType{},
		RepositoryTypes:   p.RepositoryTypes,
		RemoteTypes:       p.RemoteTypes,
		PublicationTypes:  p.PublicationTypes,
		DistributionTypes: p.DistributionTypes,
		SyncOptions:       p.SyncOptions,
	}
	for _, t := range p.Types {
		if t.err != nil {
			panic("sdk.Register: " + t.err.Error())
		}
		d.ContentTypes = append(d.ContentTypes, t.spec)
	}
	for i, t := range p.Types {
		rp.byGoType[t.goType] = &d.ContentTypes[i]
		rp.byName[t.spec.Name] = &d.ContentTypes[i]
	}
	for _, r := range p.Routes {
		d.Routes = append(d.Routes, abi.Route{Prefix: r.Prefix, Description: r.Description, Protocol: r.Protocol, Registry: r.Registry})
	}
	rp.describe = d
	registered = rp
	bridge.Registered = bridge.Exports{
		Describe:       wire(handleDescribe),
		SyncFirstStage: wire(handleSync),
		Publish:        wire(handlePublish),
		HandleRoute:    wire(handleRoute),
		FromUpload:     wire(handleUpload),
	}
}

// contentType returns the declared type of a content value.
func (p *plugin) contentType(v any) (*abi.ContentType, error) {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	ct, ok := p.byGoType[t]
	if !ok {
		return nil, fmt.Errorf("%T is not a registered content type", v)
	}
	return ct, nil
}

// ref builds a ContentRef from a value of a registered content type by keeping its natural
// key fields.
func (p *plugin) ref(v any) (abi.ContentRef, error) {
	if r, ok := v.(abi.ContentRef); ok {
		return r, nil
	}
	ct, err := p.contentType(v)
	if err != nil {
		return abi.ContentRef{}, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return abi.ContentRef{}, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return abi.ContentRef{}, err
	}
	key := make(map[string]json.RawMessage, len(ct.NaturalKey))
	for _, k := range ct.NaturalKey {
		key[k] = all[k]
	}
	kb, err := json.Marshal(key)
	return abi.ContentRef{Type: ct.Name, Key: kb}, err
}

// Ref returns a reference to the unit of content type typeName whose natural key is key (a
// struct or map marshalled to a JSON object), for relations to units of other plugins or
// units not at hand.
func Ref(typeName string, key any) (abi.ContentRef, error) {
	b, err := json.Marshal(key)
	if err != nil {
		return abi.ContentRef{}, fmt.Errorf("ref %s: %w", typeName, err)
	}
	if !strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
		return abi.ContentRef{}, fmt.Errorf("ref %s: key must marshal to a JSON object", typeName)
	}
	return abi.ContentRef{Type: typeName, Key: b}, nil
}
