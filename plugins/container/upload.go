package main

import (
	"context"
	"errors"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk"
)

// fromUpload reads a pushed manifest (content_from_upload): its media type, type and
// relations to the blobs and manifests it references, which the host checks were pushed.
// Bytes that are not a manifest this plugin stores are invalid input, which the registry
// answers with MANIFEST_INVALID. Labels, os and architecture come from the config blob,
// which a plugin cannot read during an upload; they stay empty for pushed images.
func fromUpload(_ context.Context, u *sdk.Upload) (sdk.Unit, error) {
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
	if pm.raw.Subject != nil {
		if err := checkDigest(pm.raw.Subject.Digest); err != nil {
			return sdk.Unit{}, sdk.Errorf(abi.CodeInvalidInput, "subject: %v", err)
		}
	}
	digest := "sha256:" + u.SHA256
	if u.Digest != "" {
		if err := checkDigest(u.Digest); err != nil {
			return sdk.Unit{}, sdk.Errorf(abi.CodeInvalidInput, "%v", err)
		}
		digest = u.Digest
	}
	m := Manifest{Digest: digest, SchemaVersion: pm.raw.SchemaVersion, MediaType: pm.mediaType,
		Annotations: orEmpty(pm.raw.Annotations), Labels: map[string]string{}}
	if pm.raw.Subject != nil {
		m.Subject = pm.raw.Subject.Digest
	}
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
