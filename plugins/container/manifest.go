package main

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"regexp"
	"strings"
)

// Media types of manifests (image-spec and Docker's image manifest v2).
const (
	mediaDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mediaOCIIndex       = "application/vnd.oci.image.index.v1+json"
	// Docker's schema 1 manifests are not synced: nothing current produces them, their
	// digest needs the JWS signature cut out, and pulp_container refuses to push them.
	mediaDockerV1       = "application/vnd.docker.distribution.manifest.v1+json"
	mediaDockerV1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// manifestMediaTypes are the media types the plugin stores, in Accept order: an index
// first, so that a registry holding a multi-platform image sends the index, not one
// platform's manifest.
var manifestMediaTypes = []string{mediaOCIIndex, mediaDockerList, mediaOCIManifest, mediaDockerManifest} //nolint:gochecknoglobals // read-only

// acceptManifests is the Accept header of manifest fetches.
var acceptManifests = strings.Join(manifestMediaTypes, ", ") //nolint:gochecknoglobals // read-only

// Media types of configs and layers.
const (
	mediaDockerConfig = "application/vnd.docker.container.image.v1+json"
	mediaOCIConfig    = "application/vnd.oci.image.config.v1+json"
	mediaHelmConfig   = "application/vnd.cncf.helm.config.v1+json"
)

// foreignLayers are layers whose bytes live outside the registry (Windows base layers) or
// that may not be redistributed. Like pulp_container, a sync skips them unless the remote's
// include_foreign_layers is set: clients fetch them from the descriptor's urls.
var foreignLayers = map[string]bool{ //nolint:gochecknoglobals // read-only
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":    true,
	"application/vnd.oci.image.layer.nondistributable.v1.tar":      true,
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": true,
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": true,
}

// cosignLayers map the layer media types of sigstore/cosign artifacts to the manifest type
// pulp_container gives them.
var cosignLayers = map[string]string{ //nolint:gochecknoglobals // read-only
	"application/vnd.dev.cosign.simplesigning.v1+json": "cosign_signature",
	"application/vnd.dsse.envelope.v1+json":            "cosign_attestation",
	"application/vnd.dev.sigstore.bundle.v0.3+json":    "cosign_attestation_bundle",
	"text/spdx":                      "cosign_sbom",
	"text/spdx+xml":                  "cosign_sbom",
	"text/spdx+json":                 "cosign_sbom",
	"application/vnd.cyclonedx":      "cosign_sbom",
	"application/vnd.cyclonedx+xml":  "cosign_sbom",
	"application/vnd.cyclonedx+json": "cosign_sbom",
	"application/vnd.syft+json":      "cosign_sbom",
}

// Descriptor points at a blob or a manifest (image-spec descriptor.md).
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Platform     *ociPlatform      `json:"platform,omitempty"`
}

// ociPlatform is an index entry's platform as the image-spec spells it.
type ociPlatform struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version"`
	OSFeatures   []string `json:"os.features"`
	Features     []string `json:"features"`
	Variant      string   `json:"variant"`
}

// rawManifest is the union of an image manifest and an index, enough to tell them apart.
type rawManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *Descriptor       `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Manifests     []Descriptor      `json:"manifests"`
	Annotations   map[string]string `json:"annotations"`
	// Subject is the manifest an OCI 1.1 artifact refers to (referrers API).
	Subject *Descriptor `json:"subject"`
	// FSLayers marks a schema 1 manifest.
	FSLayers json.RawMessage `json:"fsLayers"`
}

// parsedManifest is a manifest read from the registry.
type parsedManifest struct {
	raw       rawManifest
	mediaType string
}

func (p *parsedManifest) isIndex() bool {
	return p.mediaType == mediaOCIIndex || p.mediaType == mediaDockerList
}

// unsupportedError is a manifest of a kind the plugin does not sync (schema 1, unknown
// media types): the sync skips it with a warning rather than failing.
type unsupportedError struct{ what string }

func (e *unsupportedError) Error() string { return e.what }

// parseManifest decodes a manifest body and determines its media type the way
// pulp_container does: the JSON's mediaType, else the response's Content-Type, else a
// guess from the JSON's shape.
func parseManifest(body []byte, contentType string) (*parsedManifest, error) {
	var m rawManifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("manifest is not JSON: %w", err)
	}
	mt := m.MediaType
	if mt == "" {
		if ct, _, err := mime.ParseMediaType(contentType); err == nil && ct != "application/json" && ct != "application/octet-stream" && ct != "text/plain" {
			mt = ct
		}
	}
	if mt == "" {
		switch {
		case m.Manifests != nil:
			mt = mediaOCIIndex
		case m.Config != nil && m.Config.MediaType == mediaDockerConfig:
			mt = mediaDockerManifest
		case m.Config != nil:
			mt = mediaOCIManifest
		case m.FSLayers != nil:
			mt = mediaDockerV1
		}
	}
	switch mt {
	case mediaOCIIndex, mediaDockerList:
		if m.SchemaVersion != 2 {
			return nil, fmt.Errorf("%s with schemaVersion %d, want 2", mt, m.SchemaVersion)
		}
		for i, d := range m.Manifests {
			if err := checkDigest(d.Digest); err != nil {
				return nil, fmt.Errorf("manifests[%d]: %w", i, err)
			}
		}
	case mediaOCIManifest, mediaDockerManifest:
		if m.SchemaVersion != 2 {
			return nil, fmt.Errorf("%s with schemaVersion %d, want 2", mt, m.SchemaVersion)
		}
		if m.Config == nil {
			return nil, fmt.Errorf("%s without config", mt)
		}
		if err := checkDigest(m.Config.Digest); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		for i, d := range m.Layers {
			if err := checkDigest(d.Digest); err != nil {
				return nil, fmt.Errorf("layers[%d]: %w", i, err)
			}
		}
	case mediaDockerV1, mediaDockerV1Signed:
		return nil, &unsupportedError{"docker schema 1 manifests are not synced"}
	case "":
		return nil, &unsupportedError{"manifest of unknown media type"}
	default:
		return nil, &unsupportedError{fmt.Sprintf("manifest media type %s is not synced", mt)}
	}
	return &parsedManifest{raw: m, mediaType: mt}, nil
}

// digestRE is a digest this plugin handles: sha256 or sha512, lowercase hex, as the
// image-spec registers them. (Other algorithms could not be verified by the host.)
var digestRE = regexp.MustCompile(`^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`) //nolint:gochecknoglobals // read-only

func checkDigest(d string) error {
	if !digestRE.MatchString(d) {
		return fmt.Errorf("digest %q: want sha256:<64 hex> or sha512:<128 hex>", d)
	}
	return nil
}

// verifyDigest checks that body has digest d (checked by checkDigest).
func verifyDigest(body []byte, d string) error {
	alg, want, _ := strings.Cut(d, ":")
	var got string
	switch alg {
	case "sha256":
		s := sha256.Sum256(body)
		got = hex.EncodeToString(s[:])
	case "sha512":
		s := sha512.Sum512(body)
		got = hex.EncodeToString(s[:])
	}
	if got != want {
		return fmt.Errorf("content has digest %s:%s, expected %s", alg, got, d)
	}
	return nil
}

// imageConfig is what a sync reads of an image config.
type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Labels map[string]string `json:"Labels"`
	} `json:"config"`
}

// setConfig fills in what an image config tells about its manifest, as a sync and a push
// both do: labels, os and architecture.
func (m *Manifest) setConfig(c *imageConfig) {
	m.Labels = orEmpty(c.Config.Labels)
	m.Architecture, m.OS = c.Architecture, c.OS
}

// subjectOf returns the digest of the manifest m refers to (OCI 1.1 subject), "" when it
// has none, or an error for a subject digest this plugin cannot handle.
func subjectOf(m *rawManifest) (string, error) {
	if m.Subject == nil {
		return "", nil
	}
	if err := checkDigest(m.Subject.Digest); err != nil {
		return "", fmt.Errorf("subject: %w", err)
	}
	return m.Subject.Digest, nil
}

// isImageConfig reports whether a config media type is an image's (whose labels, os and
// architecture a sync reads).
func isImageConfig(mt string) bool { return mt == mediaDockerConfig || mt == mediaOCIConfig }

// classify gives an image manifest its type as pulp_container's init_manifest_nature
// does, in the same order: bootable, flatpak, helm, cosign, artifact, image.
func classify(m *rawManifest, labels map[string]string) string {
	if m.Annotations["containers.bootc"] == "1" || labels["containers.bootc"] == "1" {
		return "bootable"
	}
	if _, ok := labels["org.flatpak.ref"]; ok {
		return "flatpak"
	}
	if m.Config.MediaType == mediaHelmConfig {
		return "helm"
	}
	for _, l := range m.Layers {
		if t, ok := cosignLayers[l.MediaType]; ok {
			return t
		}
	}
	if m.ArtifactType != "" || !isImageConfig(m.Config.MediaType) {
		return "artifact"
	}
	return "image"
}

// artifactType is a manifest's artifactType, or else its config media type when that is
// not an image config (the image-spec's rule for artifacts without artifactType); empty for
// images.
func artifactType(m *rawManifest) string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	if isImageConfig(m.Config.MediaType) {
		return ""
	}
	return m.Config.MediaType
}

// platform converts an index entry's platform to the relation's fields.
func platform(p *ociPlatform) *Platform {
	if p == nil {
		return nil
	}
	return &Platform{Architecture: p.Architecture, OS: p.OS, OSVersion: p.OSVersion,
		OSFeatures: p.OSFeatures, Features: p.Features, Variant: p.Variant}
}
