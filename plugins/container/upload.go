package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk"
)

// fromUpload reads a pushed manifest (content_from_upload): its media type, type and
// relations to the blobs and manifests it references, which the host checks were pushed.
// Bytes that are not a manifest this plugin stores are invalid input, which the registry
// answers with MANIFEST_INVALID. Labels, os and architecture come from the config blob,
// pushed before the manifest, read with artifact_read as a sync reads them.
func fromUpload(ctx context.Context, u *sdk.Upload) (sdk.Unit, error) {
	if u.Type != manifestType {
		return sdk.Unit{}, sdk.Errorf(abi.CodeUnimplemented, "uploads of %s are created by the host", u.Type)
	}
	if u.Size > maxManifestBytes {
		return sdk.Unit{}, sdk.Errorf(abi.CodeLimitExceeded, "manifest of %d bytes exceeds %d", u.Size, maxManifestBytes)
	}
	body, err := u.ReadAll()
	if err != nil {
		return sdk.Unit{}, err
	}
	pm, err := parseManifest(body, u.MediaType)
	if err != nil {
		var ue *unsupportedError
		if errors.As(err, &ue) {
			return sdk.Unit{}, sdk.Errorf(abi.CodeInvalidInput, "%s", ue.what)
		}
		return sdk.Unit{}, sdk.Errorf(abi.CodeInvalidInput, "%v", err)
	}
	subject, err := subjectOf(&pm.raw)
	if err != nil {
		return sdk.Unit{}, sdk.Errorf(abi.CodeInvalidInput, "%v", err)
	}
	digest := "sha256:" + u.SHA256
	if u.Digest != "" {
		if err := checkDigest(u.Digest); err != nil {
			return sdk.Unit{}, sdk.Errorf(abi.CodeInvalidInput, "%v", err)
		}
		digest = u.Digest
	}
	m := Manifest{Digest: digest, SchemaVersion: pm.raw.SchemaVersion, MediaType: pm.mediaType,
		Annotations: orEmpty(pm.raw.Annotations), Labels: map[string]string{}, Subject: subject}
	unit := sdk.Unit{}
	if pm.isIndex() {
		m.Type, m.ArtifactType = "index", pm.raw.ArtifactType
		listed := map[string]bool{}
		for _, e := range pm.raw.Manifests {
			if listed[e.Digest] {
				continue // one relation per target
			}
			listed[e.Digest] = true
			rel := sdk.Relation{Name: relListed, To: Manifest{Digest: e.Digest}}
			if p := platform(e.Platform); p != nil {
				rel.Fields = p
			}
			unit.Relations = append(unit.Relations, rel)
		}
	} else {
		raw := &pm.raw
		if cfg := pushedConfig(ctx, u, raw.Config); cfg != nil {
			m.setConfig(cfg)
		}
		m.Type, m.ArtifactType = classify(raw, m.Labels), artifactType(raw)
		unit.Relations = append(unit.Relations, sdk.Relation{Name: relConfig, To: Blob{Digest: raw.Config.Digest}})
		seen := map[string]bool{}
		for _, l := range raw.Layers {
			m.CompressedImageSize += l.Size
			// Foreign layers live elsewhere: a client does not push them.
			if foreignLayers[l.MediaType] || seen[l.Digest] {
				continue
			}
			seen[l.Digest] = true
			unit.Relations = append(unit.Relations, sdk.Relation{Name: relBlobs, To: Blob{Digest: l.Digest}})
		}
	}
	unit.Content = m
	return unit, nil
}

// pushedConfig reads a pushed image's config blob, or returns nil when there is none to
// read: a config that is not an image's, addressed by another digest than sha256 (the
// host stores by sha256), larger than one artifact_read, not stored (pushed by a client
// that relies on a blob mount) or not JSON. None of these fails the push: the manifest is
// stored without labels, os and architecture, as before ABI 1.1.
func pushedConfig(ctx context.Context, u *sdk.Upload, d *Descriptor) *imageConfig {
	if !isImageConfig(d.MediaType) {
		return nil
	}
	sha, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok {
		return nil
	}
	if d.Size > abi.MaxArtifactReadBytes {
		u.Log.Warn("config too large to read labels from", "config", d.Digest, "size", d.Size)
		return nil
	}
	body, size, err := u.ReadArtifact(ctx, sha, 0, abi.MaxArtifactReadBytes)
	if err != nil {
		u.Log.Warn("config not read", "config", d.Digest, "error", err.Error())
		return nil
	}
	if size > int64(len(body)) {
		u.Log.Warn("config too large to read labels from", "config", d.Digest, "size", size)
		return nil
	}
	c := &imageConfig{}
	if err := json.Unmarshal(body, c); err != nil {
		u.Log.Warn("config is not JSON", "config", d.Digest, "error", err.Error())
		return nil
	}
	return c
}
