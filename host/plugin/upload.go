package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pulpo/pulpo/abi"
)

// HasExport reports whether the plugin provides an optional callable export such as
// abi.ExportContentFromUpload.
func (p *Plugin) HasExport(name string) bool { return p.exports.Has(name) }

// ContentFromUpload runs content_from_upload on body, bytes a client uploaded that the
// caller stores as the unit's artifact: body is written to a fresh read-only mount and
// req's Path, SHA256 and Size are set from it. The unit returned was checked against the
// plugin's describe (type, fields, relations) and has no artifacts.
func (p *Plugin) ContentFromUpload(ctx context.Context, req abi.UploadRequest, body []byte, sha256 string, host RouteHost) (abi.DeclarativeContent, error) {
	if !p.exports.Has(abi.ExportContentFromUpload) {
		return abi.DeclarativeContent{}, p.callError(abi.ExportContentFromUpload,
			abi.NewError(abi.CodeUnimplemented, "the plugin does not export "+abi.ExportContentFromUpload))
	}
	dir, err := os.MkdirTemp(p.reg.opts.ScratchDir, "pulpo-upload-")
	if err != nil {
		return abi.DeclarativeContent{}, fmt.Errorf("upload scratch dir: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "upload"), body, 0o644); err != nil {
		return abi.DeclarativeContent{}, fmt.Errorf("upload scratch file: %w", err)
	}
	req.Path, req.SHA256, req.Size = abi.InDir+"/upload", sha256, int64(len(body))
	cs := &callState{inDir: dir, lookup: host, stat: host, read: p.reg.opts.Artifacts}
	var resp abi.UploadResponse
	if err := p.callJSON(ctx, abi.ExportContentFromUpload, req, &resp, cs); err != nil {
		return abi.DeclarativeContent{}, err
	}
	dc := resp.Content
	if dc.Type != req.Type || len(dc.Artifacts) > 0 {
		return dc, p.callError(abi.ExportContentFromUpload, abi.NewError(abi.CodeInternal,
			fmt.Sprintf("upload of %s answered with a %s unit with %d artifacts", req.Type, dc.Type, len(dc.Artifacts))))
	}
	// Checked as it will be stored: with the uploaded artifact at its relative path.
	check := dc
	if ct, ok := p.desc.ContentTypeByName(dc.Type); ok && ct.Artifacts.Count == abi.ArtifactsOne {
		var fields map[string]json.RawMessage
		var rp string
		if json.Unmarshal(dc.Fields, &fields) == nil && json.Unmarshal(fields[ct.Artifacts.RelativePathField], &rp) == nil {
			check.Artifacts = []abi.DeclarativeArtifact{{RelativePath: rp, SHA256: sha256, URL: "upload:" + sha256}}
		}
	}
	if err := p.desc.CheckContent(check); err != nil {
		// The plugin broke its own describe: not the client's fault.
		return dc, p.callError(abi.ExportContentFromUpload, abi.NewError(abi.CodeInternal, err.Error()))
	}
	return dc, nil
}
