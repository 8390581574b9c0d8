package api

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/coretask"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
	"github.com/pulpo/pulpo/host/tasks"
)

// contentUploadBody documents what creating a unit takes beyond its own fields.
type contentUploadBody struct {
	Repository *string `json:"repository,omitempty" format:"uri" doc:"A URI of a repository the new content unit should be associated with."`
	Artifact   *string `json:"artifact,omitempty" format:"uri" doc:"Artifact file representing the physical content"`
	Upload     *string `json:"upload,omitempty" format:"uri" doc:"An uncommitted upload that may be turned into the content unit."`
}

// contentCreateRoute registers POST on a content endpoint whose type lets the
// host make units from artifacts.
func (s *Server) contentCreateRoute(ct ContentType, prefix string, tags []string) error {
	name := tag(ct.Plugin, ct.Endpoint)
	var own []Field
	for _, f := range ct.Fields {
		if f.Name != ct.DigestField {
			own = append(own, f)
		}
	}
	jsonBody := extend(s.requestSchema(contentUploadBody{}), own, true)
	form := *jsonBody
	form.Properties = map[string]*openapi.Schema{"file": {Type: "string", Format: "binary", Description: "An uploaded file that may be turned into the content unit."}}
	for k, v := range jsonBody.Properties {
		form.Properties[k] = v
	}
	return s.route("POST", prefix, openapi.Operation{ID: opName("content", ct.Plugin, ct.Endpoint, "create"),
		Summary: "Create a " + ct.PulpType + " unit", Tags: tags,
		Description: "Trigger an asynchronous task to create content, optionally create new repository version.",
		Body: &openapi.Body{Required: true, Content: map[string]*openapi.Schema{
			"application/json":    s.spec.Component(strings.ReplaceAll(name, " ", "")+"ContentUpload", jsonBody),
			"multipart/form-data": s.spec.Component(strings.ReplaceAll(name, " ", "")+"ContentUploadForm", &form),
		}},
		Responses: map[int]openapi.Response{202: {Description: "Accepted", Schema: s.spec.AsyncOperation()}, 400: s.spec.ErrorResponse("Bad request")},
	}, s.createContent(ct, prefix))
}

func (s *Server) createContent(ct ContentType, prefix string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		var o object
		var fileArtifact *uuid.UUID
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt == "multipart/form-data" {
			// A file part becomes an artifact now; the task makes the unit.
			var sp *artifact.Spooled
			defer func() {
				if sp != nil {
					sp.Discard()
				}
			}()
			allowed := []string{"repository", "artifact", "upload"}
			for _, f := range ct.Fields {
				allowed = append(allowed, f.Name)
			}
			form, gotFile, err := multipartForm(r, allowed, func(part io.Reader) error {
				var err error
				sp, err = s.Artifacts.Spool(ctx, part)
				return err
			})
			if err != nil {
				return err
			}
			o = object{}
			for k, v := range form {
				o[k], _ = json.Marshal(v)
			}
			if gotFile {
				a, _, err := s.Artifacts.Commit(ctx, sp, false)
				sp = nil
				if err != nil {
					return err
				}
				fileArtifact = &a.ID
			}
		} else {
			var err error
			if o, err = decodeObject(w, r); err != nil {
				return err
			}
		}
		args, err := s.contentInput(r, o, ct, fileArtifact)
		if err != nil {
			return err
		}
		args.ContentHref = prefix
		spec := tasks.Spec{Name: coretask.CreateContent, Args: args}
		if args.Repository != nil {
			spec.Exclusive = []string{args.RepoHref}
		}
		if args.Upload != nil {
			spec.Exclusive = append(spec.Exclusive, href.Flat(href.Uploads, *args.Upload))
		}
		return s.dispatch(w, r, spec)
	}
}

// contentInput validates a create request into task arguments.
func (s *Server) contentInput(r *http.Request, o object, ct ContentType, fileArtifact *uuid.UUID) (coretask.CreateContentArgs, error) {
	ctx := r.Context()
	a := coretask.CreateContentArgs{Type: ct.PulpType, DigestField: ct.DigestField, NaturalKey: ct.NaturalKey, Artifact: fileArtifact}
	fe := fieldErrors{}
	known := map[string]bool{"repository": true, "artifact": true, "upload": true}
	var own []Field
	for _, f := range ct.Fields {
		if f.Name != ct.DigestField {
			own = append(own, f)
			known[f.Name] = true
		}
	}
	o.unexpected(fe, known)
	if _, ok := o[ct.DigestField]; ok {
		fe.add(ct.DigestField, "This field is computed from the file and cannot be set.")
	}
	a.Fields = o.pluginFields(fe, own, nil, true)
	var fields map[string]any
	_ = json.Unmarshal(a.Fields, &fields)
	if p, ok := fields[ct.RelativePathField].(string); ok {
		if !abi.CleanRelativePath(p) {
			fe.add(ct.RelativePathField, "The path must be relative, without empty, '.' or '..' segments.")
		}
		a.RelativePath = p
	}
	sources := 0
	if fileArtifact != nil {
		sources++
	}
	if ref, _ := o.hrefOf(fe, "artifact", href.Artifacts); ref != nil {
		sources++
		if _, err := s.DB.GetArtifact(ctx, ref.ID); errors.Is(err, db.ErrNotFound) {
			fe.add("artifact", "Invalid hyperlink - Object does not exist.")
		} else if err != nil {
			return a, err
		}
		a.Artifact = &ref.ID
	}
	if ref, _ := o.hrefOf(fe, "upload", href.Uploads); ref != nil {
		sources++
		sum, err := s.uploadDigest(ctx, ref.ID)
		var he *Error
		switch {
		case errors.Is(err, db.ErrNotFound):
			fe.add("upload", "Invalid hyperlink - Object does not exist.")
		case errors.As(err, &he):
			if m, ok := he.Body.(map[string]string); ok {
				fe.add("upload", "%s", m["detail"])
			} else {
				fe.add("upload", "The upload cannot be used.")
			}
		case err != nil:
			return a, err
		}
		a.Upload, a.UploadSHA256 = &ref.ID, sum
	}
	if sources != 1 && len(fe) == 0 {
		fe.add("non_field_errors", "Exactly one of 'file', 'artifact' or 'upload' must be given.")
	}
	repo, err := s.repositoryRef(ctx, o, fe, "repository")
	if err != nil {
		return a, err
	}
	if repo != nil {
		if err := s.requireOn(ctx, "repository", s.types.repoHref(repo.PulpType, repo.ID), "modify"); err != nil {
			return a, err
		}
		rt, ok := s.types.repos[repo.PulpType]
		if ok && contains(rt.ContentTypes, ct.PulpType) {
			a.Repository, a.RepoHref, a.ContentTypes = &repo.ID, s.types.repoHref(repo.PulpType, repo.ID), rt.ContentTypes
			a.RepoKeys = s.repoKeys(rt)
		} else {
			fe.add("repository", "Repository of type %s cannot hold %s content.", repo.PulpType, ct.PulpType)
		}
	}
	return a, fe.err()
}
