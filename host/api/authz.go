package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/auth"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
)

// access is the permission rule of one route, derived from its method and
// path by accessFor, so that every route, including ones added later, gets
// one: unknown routes are for superusers only.
type access struct {
	public bool   // anyone, even anonymous (status/, docs/)
	admin  bool   // superusers only
	perm   string // needed permission; "" with neither flag: any authenticated user
	// object: perm is checked on the object of the path's {pulp_id}, globally
	// held permissions counting too; without view on it the object does not
	// exist for the user (404), with view but not perm it is 403.
	object bool
	view   string
	// scope is the LIKE pattern of the view permission a list is filtered
	// by, unless the user holds a matching permission globally.
	scope string
	// owner is the role the creator gets on what a synchronous create makes.
	owner string
	// kind is set on lists spanning every plugin type of a kind: they are
	// scoped unless the user may view every type of it globally.
	kind auth.Kind
}

var typedKinds = map[string]auth.Kind{
	href.Repositories: auth.Repository, href.Remotes: auth.Remote, href.Distributions: auth.Distribution,
	href.Publications: auth.Publication, href.ContentGuards: auth.ContentGuard,
}

// kindScope matches the view permission of every model of a kind, e.g.
// "%.view\_%repository", for lists spanning plugins.
func kindScope(k auth.Kind) string {
	m := auth.ModelOf(k, "", "")
	return `%.view\_%` + auth.EscapeLike(m.Name)
}

// accessFor derives the rule of the route method pattern.
func accessFor(method, pattern string) access {
	rest, ok := strings.CutPrefix(pattern, href.APIRoot)
	if !ok {
		return access{admin: true}
	}
	seg := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	get := isRead(method)
	objectAction := func(view, change, del string) access {
		a := access{object: true, view: view, perm: change}
		switch {
		case get:
			a.perm = view
		case method == http.MethodDelete:
			a.perm = del
		}
		return a
	}
	switch master := seg[0]; master {
	case "status", "docs", "livez", "readyz", "":
		return access{public: true}
	case href.Repositories, href.Remotes, href.Distributions, href.Publications, href.ContentGuards:
		kind := typedKinds[master]
		if len(seg) == 1 {
			if get {
				return access{scope: kindScope(kind), kind: kind}
			}
			return access{admin: true}
		}
		if len(seg) < 3 {
			return access{admin: true}
		}
		m := auth.ModelOf(kind, seg[1], seg[2])
		if len(seg) == 3 {
			if get {
				return access{scope: auth.EscapeLike(m.Perm("view"))}
			}
			return access{perm: m.Perm("add"), owner: m.Role("owner")}
		}
		if seg[3] != "{pulp_id}" {
			return access{admin: true}
		}
		a := objectAction(m.Perm("view"), m.Perm("change"), m.Perm("delete"))
		if len(seg) == 4 {
			return a
		}
		switch seg[4] {
		case "modify", "sync", "repair":
			a.perm = m.Perm(seg[4])
		case "my_permissions":
			a.perm = m.Perm("view")
		case "list_roles", "add_role", "remove_role":
			a.perm = m.Perm("manage_roles")
		case "versions":
			if len(seg) == 6 && method == http.MethodDelete {
				a.perm = m.VersionDelete()
			}
			if len(seg) > 6 && seg[6] == "repair" {
				a.perm = m.Perm("repair")
			}
		}
		return a
	case href.Content:
		return access{} // content is shared: any user may list, read and upload it, as in Pulp
	case href.Artifacts:
		if method == http.MethodDelete {
			return access{perm: auth.ArtifactDel}
		}
		return access{}
	case href.Uploads:
		if len(seg) == 1 {
			if get {
				return access{scope: auth.EscapeLike(auth.UploadView)}
			}
			return access{owner: auth.UploadOwner}
		}
		return objectAction(auth.UploadView, auth.UploadChange, auth.UploadDelete)
	case href.Tasks:
		if len(seg) == 1 && get {
			return access{scope: auth.EscapeLike(auth.TaskView)}
		}
		if len(seg) == 2 && seg[1] == "{pulp_id}" {
			return objectAction(auth.TaskView, auth.TaskChange, auth.TaskDelete)
		}
		return access{admin: true}
	case href.TaskGroups, href.Workers:
		if get {
			return access{}
		}
		return access{admin: true}
	case "users":
		switch {
		case len(seg) >= 3 && seg[2] == "roles" && !get:
			return access{perm: auth.UserChange}
		case get:
			return access{perm: auth.UserView}
		case method == http.MethodPost:
			return access{perm: auth.UserAdd}
		case method == http.MethodDelete:
			return access{perm: auth.UserDelete}
		}
		return access{perm: auth.UserChange}
	case "groups":
		if len(seg) == 1 {
			if get {
				return access{scope: auth.EscapeLike(auth.GroupView)}
			}
			return access{perm: auth.GroupAdd, owner: "core.group_owner"}
		}
		if len(seg) >= 3 && seg[2] == "roles" && !get {
			// Granting roles to a group is granting them to its members.
			return access{object: true, view: auth.GroupView, perm: "core.manage_roles_group"}
		}
		a := objectAction(auth.GroupView, auth.GroupChange, auth.GroupDelete)
		if len(seg) >= 3 && !get {
			a.perm = auth.GroupChange // membership changes
		}
		return a
	case "roles":
		switch {
		case get:
			return access{}
		case method == http.MethodPost:
			return access{perm: auth.RoleAdd}
		case method == http.MethodDelete:
			return access{perm: auth.RoleDelete}
		}
		return access{perm: auth.RoleChange}
	}
	return access{admin: true}
}

type scopeKey struct{}
type ownerKey struct{}

// ownerGrant is what a create handler calls with the href of what it made.
type ownerGrant func(ctx context.Context, objectHref string) error

// authorize wraps h with the rule a. Without an Authorizer (unit tests of
// other concerns) every request passes.
func (s *Server) authorize(a access, h handlerFunc) handlerFunc {
	if s.Auth == nil || a.public {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		u := auth.UserFrom(ctx)
		if u == nil {
			auth.Unauthorized(w, "Authentication credentials were not provided.")
			return nil
		}
		if a.owner != "" {
			ctx = context.WithValue(ctx, ownerKey{}, ownerGrant(func(ctx context.Context, objectHref string) error {
				return s.grantObject(ctx, a.owner, u.ID, objectHref)
			}))
		}
		if u.IsSuperuser {
			return h(w, r.WithContext(ctx))
		}
		if a.admin {
			return errForbidden
		}
		var object *uuid.UUID
		if a.object {
			id, err := uuid.Parse(r.PathValue("pulp_id"))
			if err != nil {
				return errNotFound
			}
			object = &id
		}
		perms, err := s.Auth.Permissions(ctx, u, object)
		if err != nil {
			return err
		}
		if a.object && !perms.Has(a.view) {
			return errNotFound
		}
		if a.perm != "" && !perms.Has(a.perm) {
			return errForbidden
		}
		if a.scope != "" && !s.viewsAll(perms, a) {
			ctx = context.WithValue(ctx, scopeKey{}, db.Visible{User: u.ID, Perm: a.scope})
		}
		if !isRead(r.Method) {
			if err := s.checkReferences(ctx, w, r, u); err != nil {
				return err
			}
		}
		return h(w, r.WithContext(ctx))
	}
}

// viewsAll reports whether perms let the user view everything a scoped
// list holds, so that it needs no scoping.
func (s *Server) viewsAll(perms auth.Perms, a access) bool {
	if a.kind == "" {
		return perms.Match(a.scope)
	}
	for _, m := range s.models(a.kind) {
		if !perms.Has(m.Perm("view")) {
			return false
		}
	}
	return true
}

// models are the permission subjects of every plugin type of kind.
func (s *Server) models(kind auth.Kind) []auth.Model {
	var out []auth.Model
	add := func(plugin, endpoint string) { out = append(out, auth.ModelOf(kind, plugin, endpoint)) }
	switch kind {
	case auth.Repository:
		for _, t := range s.Types.Repositories {
			add(t.Plugin, t.Endpoint)
		}
	case auth.Remote:
		for _, t := range s.Types.Remotes {
			add(t.Plugin, t.Endpoint)
		}
	case auth.Distribution:
		for _, t := range s.Types.Distributions {
			add(t.Plugin, t.Endpoint)
		}
	case auth.Publication:
		for _, t := range s.Types.Publications {
			add(t.Plugin, t.Endpoint)
		}
	case auth.ContentGuard:
		for _, g := range s.guardTypes() {
			add(segments(g))
		}
	}
	return out
}

func isRead(method string) bool { return method == http.MethodGet || method == http.MethodHead }

// referenceFields are the body fields naming another object a write uses:
// the user must be able to view it, as Pulp's has_repo_or_repo_ver_param,
// has_remote_param and has_publication_param conditions require.
var referenceFields = []string{"repository", "repository_version", "publication", "remote", "content_guard", "base_version"}

// checkReferences refuses a JSON write naming an object the user may not
// view, with 403 naming the field. The body is read and put back.
func (s *Server) checkReferences(ctx context.Context, w http.ResponseWriter, r *http.Request, u *auth.User) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" || r.Body == nil {
		return nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return nil //nolint:nilerr // the handler reports the bad body
	}
	var fields map[string]any
	if json.Unmarshal(body, &fields) != nil {
		return nil // likewise
	}
	for _, f := range referenceFields {
		v, ok := fields[f].(string)
		if !ok {
			continue
		}
		ref, err := href.Parse(v)
		kind, typed := typedKinds[ref.Master]
		if err != nil || !typed {
			continue // not an object reference: the handler validates it
		}
		m := auth.ModelOf(kind, ref.Plugin, ref.Endpoint)
		perms, err := s.Auth.Permissions(ctx, u, &ref.ID)
		if err != nil {
			return err
		}
		if !perms.Has(m.Perm("view")) {
			return &Error{Status: http.StatusForbidden, Body: map[string][]string{f: {"You do not have permission to use this object."}}}
		}
	}
	return nil
}

// requireOn refuses, with 403 naming field, a request whose user may not
// do action on the typed object objectHref (e.g. "modify" a repository
// that content is uploaded into).
func (s *Server) requireOn(ctx context.Context, field, objectHref, action string) error {
	u := auth.UserFrom(ctx)
	if s.Auth == nil || (u != nil && u.IsSuperuser) {
		return nil
	}
	ref, err := href.Parse(objectHref)
	kind, typed := typedKinds[ref.Master]
	if err != nil || !typed {
		return fieldError(field, "Invalid href: %s", objectHref)
	}
	perms, err := s.Auth.Permissions(ctx, u, &ref.ID)
	if err != nil {
		return err
	}
	if !perms.Has(auth.ModelOf(kind, ref.Plugin, ref.Endpoint).Perm(action)) {
		return &Error{Status: http.StatusForbidden, Body: map[string][]string{field: {"You do not have permission to use this object."}}}
	}
	return nil
}

var errForbidden = detail(http.StatusForbidden, "You do not have permission to perform this action.")

// scopeFilter is the list filter keeping what the request's user may view,
// if the list must be scoped.
func scopeFilter(ctx context.Context) (db.Filter, bool) {
	v, ok := ctx.Value(scopeKey{}).(db.Visible)
	return db.Filter{Field: "pulp_id", Op: "visible", Value: v}, ok
}

// ownCreated gives the creator its owner role on what a create handler made.
func ownCreated(r *http.Request, objectHref string) error {
	if g, ok := r.Context().Value(ownerKey{}).(ownerGrant); ok {
		return g(r.Context(), objectHref)
	}
	return nil
}

// grantObject assigns role to user on the object of objectHref.
func (s *Server) grantObject(ctx context.Context, role string, user uuid.UUID, objectHref string) error {
	id, err := objectID(objectHref)
	if err != nil {
		return err
	}
	_, err = s.DB.Assign(ctx, db.Assignment{Role: role, UserID: &user, ObjectID: &id, ObjectHref: &objectHref})
	if errors.Is(err, db.ErrConflict) {
		return nil
	}
	return err
}

// objectID is the id ending an object href.
func objectID(objectHref string) (uuid.UUID, error) {
	parts := strings.Split(strings.TrimSuffix(objectHref, "/"), "/")
	return uuid.Parse(parts[len(parts)-1])
}

// ownTask makes the request's user the owner of a task it dispatched; what
// the task creates then becomes the user's too (a trigger of migration
// 0007 grants it as the task records created resources).
func (s *Server) ownTask(ctx context.Context, taskHref string) error {
	if s.Auth == nil {
		return nil
	}
	u := auth.UserFrom(ctx)
	if u == nil {
		return nil
	}
	return s.grantObject(ctx, auth.TaskOwner, u.ID, taskHref)
}
