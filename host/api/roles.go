package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/auth"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
)

// Roles (roles/), their assignment to users and groups
// (users/{id}/roles/, groups/{id}/roles/) and the per-object endpoints
// list_roles/, add_role/, remove_role/ and my_permissions/.

const rolesPath = href.APIRoot + "roles/"

type roleResponse struct {
	base
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Permissions []string `json:"permissions" doc:"Permissions of the role, e.g. file.view_filerepository."`
	Locked      bool     `json:"locked" readOnly:"true" doc:"Built-in roles are locked: they cannot be changed or deleted."`
}

type roleRequest struct {
	Name        *string   `json:"name"`
	Description *string   `json:"description,omitempty"`
	Permissions *[]string `json:"permissions"`
}

// patchedRoleRequest documents PATCH bodies: every field optional.
type patchedRoleRequest struct {
	Name        *string   `json:"name,omitempty"`
	Description *string   `json:"description,omitempty"`
	Permissions *[]string `json:"permissions,omitempty"`
}

type assignmentResponse struct {
	PulpHref         string    `json:"pulp_href" readOnly:"true" format:"uri"`
	PRN              string    `json:"prn" readOnly:"true"`
	PulpCreated      time.Time `json:"pulp_created" readOnly:"true"`
	Role             string    `json:"role"`
	ContentObject    *string   `json:"content_object" doc:"The href of the object the role applies to; null for every object."`
	ContentObjectPRN *string   `json:"content_object_prn" readOnly:"true"`
	Description      string    `json:"description" readOnly:"true"`
	Permissions      []string  `json:"permissions" readOnly:"true"`
	Domain           *string   `json:"domain" readOnly:"true"`
}

type assignmentRequest struct {
	Role          string  `json:"role"`
	ContentObject *string `json:"content_object"`
}

type nestedRole struct {
	Role   string   `json:"role"`
	Users  []string `json:"users,omitempty" doc:"Usernames to (un)assign the role to."`
	Groups []string `json:"groups,omitempty" doc:"Group names to (un)assign the role to."`
}

// nestedRoleResponse is nestedRole with both lists always present.
type nestedRoleResponse struct {
	Role   string   `json:"role"`
	Users  []string `json:"users"`
	Groups []string `json:"groups"`
}

type objectRolesResponse struct {
	Roles []nestedRoleResponse `json:"roles"`
}

type myPermissionsResponse struct {
	Permissions []string `json:"permissions"`
}

var permRE = regexp.MustCompile(`^[a-z0-9_-]+\.[a-z0-9_]+$`)

func roleHref(id uuid.UUID) string { return rolesPath + id.String() + "/" }

func renderRole(r db.Role) any {
	return roleResponse{base: base{PulpHref: roleHref(r.ID), PRN: prn("core.role", r.ID), PulpCreated: r.CreatedAt,
		PulpLastUpdated: r.UpdatedAt}, Name: r.Name, Description: r.Description, Permissions: r.Permissions, Locked: r.Locked}
}

var roleFilters = append(append(textFilters("name"), textFilters("description", "", "contains", "icontains")...),
	filter{Param: "locked", Field: "locked", Kind: kBool, Doc: "Filter results where locked matches value"},
	filter{Param: "contains_permission", Field: "permissions", Op: "has", Kind: kString, Doc: "Roles holding this permission"},
)

var roleOrdering = []string{"name", "description", "locked", "pulp_created"}

var assignmentFilters = []filter{
	{Param: "role", Field: "role", Kind: kString, Doc: "Filter results where role matches value"},
	{Param: "content_object", Field: "content_object", Kind: kString, Doc: "Filter by the href of the object"},
}

func (s *Server) roleRoutes() error {
	tags := []string{"Roles"}
	one := rolesPath + "{pulp_id}/"
	resp := s.spec.SchemaOf("RoleResponse", roleResponse{})
	req := s.spec.RequestOf("Role", roleRequest{})
	patch := s.spec.RequestOf("PatchedRole", patchedRoleRequest{})
	bad, notFound, forbidden := s.spec.ErrorResponse("Bad request"), s.spec.ErrorResponse("Not found"), s.spec.ErrorResponse("Forbidden")
	body := func(sc *openapi.Schema) *openapi.Body {
		return &openapi.Body{Required: true, Content: map[string]*openapi.Schema{"application/json": sc}}
	}
	defs := []routeDef{
		{"GET", rolesPath, openapi.Operation{ID: "roles_list", Summary: "List roles", Tags: tags, Params: listParams(roleFilters, roleOrdering),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(resp)}, 400: bad}},
			listOf(roleFilters, roleOrdering, "", s.DB.ListRoles, renderRole)},
		{"POST", rolesPath, openapi.Operation{ID: "roles_create", Summary: "Create a role", Tags: tags, Body: body(req),
			Responses: map[int]openapi.Response{201: {Description: "Created", Schema: resp}, 400: bad}}, s.writeRole(true, false)},
		{"GET", one, openapi.Operation{ID: "roles_read", Summary: "Inspect a role", Tags: tags, Params: selectionParams(),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: resp}, 404: notFound}}, s.readRole},
		{"PUT", one, openapi.Operation{ID: "roles_update", Summary: "Update a role", Tags: tags, Body: body(req),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: resp}, 400: bad, 403: forbidden, 404: notFound}}, s.writeRole(false, false)},
		{"PATCH", one, openapi.Operation{ID: "roles_partial_update", Summary: "Update a role", Tags: tags, Body: body(patch),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: resp}, 400: bad, 403: forbidden, 404: notFound}}, s.writeRole(false, true)},
		{"DELETE", one, openapi.Operation{ID: "roles_delete", Summary: "Delete a role", Tags: tags,
			Responses: map[int]openapi.Response{204: {Description: "No content"}, 403: forbidden, 404: notFound}}, s.deleteRole},
	}
	aresp := s.spec.SchemaOf("UserRoleResponse", assignmentResponse{})
	areq := s.spec.RequestOf("UserRole", assignmentRequest{})
	for _, holder := range []struct{ name, path, tag string }{
		{"users", usersPath, "Users: Roles"}, {"groups", groupsPath, "Groups: Roles"},
	} {
		list := holder.path + "{pulp_id}/roles/"
		item := list + "{role_id}/"
		group := holder.name == "groups"
		t := []string{holder.tag}
		defs = append(defs,
			routeDef{"GET", list, openapi.Operation{ID: holder.name + "_roles_list", Summary: "List role assignments", Tags: t,
				Params:    listParams(assignmentFilters, []string{"role", "pulp_created"}),
				Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(aresp)}, 404: notFound}}, s.listAssignments(group)},
			routeDef{"POST", list, openapi.Operation{ID: holder.name + "_roles_create", Summary: "Assign a role", Tags: t, Body: body(areq),
				Responses: map[int]openapi.Response{201: {Description: "Created", Schema: aresp}, 400: bad, 404: notFound}}, s.createAssignment(group)},
			routeDef{"GET", item, openapi.Operation{ID: holder.name + "_roles_read", Summary: "Inspect a role assignment", Tags: t, Params: selectionParams(),
				Responses: map[int]openapi.Response{200: {Description: "OK", Schema: aresp}, 404: notFound}}, s.readAssignment(group)},
			routeDef{"DELETE", item, openapi.Operation{ID: holder.name + "_roles_delete", Summary: "Remove a role assignment", Tags: t,
				Responses: map[int]openapi.Response{204: {Description: "No content"}, 404: notFound}}, s.deleteAssignment(group)},
		)
	}
	if err := s.routes(defs); err != nil {
		return err
	}
	return s.objectRoleRoutes()
}

func (s *Server) readRole(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	ro, err := s.DB.GetRole(r.Context(), id)
	if err != nil {
		return err
	}
	return detailJSON(w, r, http.StatusOK, renderRole(ro))
}

var errLocked = detail(http.StatusForbidden, "Locked roles cannot be changed or deleted.")

func (s *Server) writeRole(create, partial bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req roleRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		var ro db.Role
		if !create {
			id, err := pathID(r)
			if err != nil {
				return err
			}
			if ro, err = s.DB.GetRole(r.Context(), id); err != nil {
				return err
			}
			if ro.Locked {
				return errLocked
			}
		}
		fe := fieldErrors{}
		switch {
		case req.Name != nil && (*req.Name == "" || len(*req.Name) > 128):
			fe.add("name", "Ensure this field has between 1 and 128 characters.")
		case req.Name != nil:
			ro.Name = *req.Name
		case !partial:
			fe.add("name", "This field is required.")
		}
		if req.Description != nil {
			ro.Description = *req.Description
		}
		switch {
		case req.Permissions != nil:
			for _, p := range *req.Permissions {
				if !permRE.MatchString(p) {
					fe.add("permissions", "Invalid permission %q: expected <app>.<codename>.", p)
				}
			}
			ro.Permissions = slices.Compact(slices.Sorted(slices.Values(*req.Permissions)))
		case !partial:
			fe.add("permissions", "This field is required.")
		}
		if err := fe.err(); err != nil {
			return err
		}
		var err error
		status := http.StatusOK
		if create {
			ro, err = s.DB.CreateRole(r.Context(), ro)
			status = http.StatusCreated
		} else {
			ro, err = s.DB.UpdateRole(r.Context(), ro)
		}
		if errors.Is(err, db.ErrConflict) {
			return fieldError("name", "role with this name already exists.")
		}
		if err != nil {
			return err
		}
		return writeJSON(w, status, renderRole(ro))
	}
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	ro, err := s.DB.GetRole(r.Context(), id)
	if err != nil {
		return err
	}
	if ro.Locked {
		return errLocked
	}
	if err := s.DB.DeleteRole(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// holderFromPath checks that the user or group of the path exists and
// returns the assignment fields naming it.
func (s *Server) holderFromPath(r *http.Request, group bool) (user, grp *uuid.UUID, base string, err error) {
	id, err := pathID(r)
	if err != nil {
		return nil, nil, "", err
	}
	if group {
		if _, err := s.DB.GetGroup(r.Context(), id); err != nil {
			return nil, nil, "", err
		}
		return nil, &id, groupHref(id), nil
	}
	if _, err := s.DB.GetUser(r.Context(), id); err != nil {
		return nil, nil, "", err
	}
	return &id, nil, userHref(id), nil
}

func (s *Server) renderAssignment(holderHref string, a db.Assignment, roles map[string]db.Role) assignmentResponse {
	ro := roles[a.Role]
	out := assignmentResponse{PulpHref: holderHref + "roles/" + a.ID.String() + "/", PRN: prn("core.userrole", a.ID),
		PulpCreated: a.CreatedAt, Role: a.Role, ContentObject: a.ObjectHref, Description: ro.Description,
		Permissions: ro.Permissions}
	if out.Permissions == nil {
		out.Permissions = []string{}
	}
	if a.ObjectHref != nil {
		if app, model, id, ok := objectModel(*a.ObjectHref); ok {
			p := prn(app+"."+model, id)
			out.ContentObjectPRN = &p
		}
	}
	return out
}

// rolesNamed loads the roles of assignments, one query for a page.
func (s *Server) rolesNamed(ctx context.Context, as []db.Assignment) (map[string]db.Role, error) {
	names := map[string]bool{}
	var list []string
	for _, a := range as {
		if !names[a.Role] {
			names[a.Role] = true
			list = append(list, a.Role)
		}
	}
	out := map[string]db.Role{}
	if len(list) == 0 {
		return out, nil
	}
	p, err := s.DB.ListRoles(ctx, db.ListParams{Filters: []db.Filter{{Field: "name", Op: "in", Value: list}}, Limit: len(list)})
	if err != nil {
		return nil, err
	}
	for _, ro := range p.Items {
		out[ro.Name] = ro
	}
	return out, nil
}

func holderFilter(user, group *uuid.UUID) db.Filter {
	if group != nil {
		return db.Filter{Field: "group", Value: *group}
	}
	return db.Filter{Field: "user", Value: *user}
}

func (s *Server) listAssignments(group bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		user, grp, holder, err := s.holderFromPath(r, group)
		if err != nil {
			return err
		}
		lq, err := parseList(r, assignmentFilters, []string{"role", "pulp_created"})
		if err != nil {
			return err
		}
		lq.Filters = append(lq.Filters, holderFilter(user, grp))
		p, err := s.DB.ListAssignments(r.Context(), lq.ListParams)
		if err != nil {
			return err
		}
		roles, err := s.rolesNamed(r.Context(), p.Items)
		if err != nil {
			return err
		}
		return writePage(w, r, lq, p.Count, p.Items, func(a db.Assignment) any { return s.renderAssignment(holder, a, roles) })
	}
}

func (s *Server) assignmentFromPath(r *http.Request, group bool) (db.Assignment, string, error) {
	user, grp, holder, err := s.holderFromPath(r, group)
	if err != nil {
		return db.Assignment{}, "", err
	}
	id, err := uuid.Parse(r.PathValue("role_id"))
	if err != nil {
		return db.Assignment{}, "", errNotFound
	}
	a, err := s.DB.GetAssignment(r.Context(), id)
	if err != nil {
		return db.Assignment{}, "", err
	}
	mine := (user != nil && a.UserID != nil && *a.UserID == *user) || (grp != nil && a.GroupID != nil && *a.GroupID == *grp)
	if !mine {
		return db.Assignment{}, "", errNotFound
	}
	return a, holder, nil
}

func (s *Server) readAssignment(group bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		a, holder, err := s.assignmentFromPath(r, group)
		if err != nil {
			return err
		}
		roles, err := s.rolesNamed(r.Context(), []db.Assignment{a})
		if err != nil {
			return err
		}
		return detailJSON(w, r, http.StatusOK, s.renderAssignment(holder, a, roles))
	}
}

func (s *Server) deleteAssignment(group bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		a, _, err := s.assignmentFromPath(r, group)
		if err != nil {
			return err
		}
		if err := s.DB.DeleteAssignment(r.Context(), a.ID); err != nil {
			return err
		}
		s.forgetCredentials()
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *Server) createAssignment(group bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		user, grp, holder, err := s.holderFromPath(r, group)
		if err != nil {
			return err
		}
		var req assignmentRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		ro, err := s.DB.GetRoleByName(r.Context(), req.Role)
		if errors.Is(err, db.ErrNotFound) {
			return fieldError("role", "Object with name=%s does not exist.", req.Role)
		}
		if err != nil {
			return err
		}
		a := db.Assignment{Role: ro.Name, UserID: user, GroupID: grp}
		if req.ContentObject != nil {
			id, err := s.checkObject(r.Context(), *req.ContentObject, ro)
			if err != nil {
				return err
			}
			a.ObjectID, a.ObjectHref = &id, req.ContentObject
		}
		a, err = s.DB.Assign(r.Context(), a)
		if errors.Is(err, db.ErrConflict) {
			return detail(http.StatusBadRequest, "The role is already assigned to this holder on this object.")
		}
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, s.renderAssignment(holder, a, map[string]db.Role{ro.Name: ro}))
	}
}

// objectModel names the app and model of an object href for the
// permission names that apply to it: typed objects, tasks, uploads, groups.
func objectModel(h string) (app, model string, id uuid.UUID, ok bool) {
	if ref, err := href.Parse(h); err == nil && !ref.IsVersion() {
		if k, typed := typedKinds[ref.Master]; typed && ref.Plugin != "" {
			m := auth.ModelOf(k, ref.Plugin, ref.Endpoint)
			return m.App, m.Name, ref.ID, true
		}
	}
	for prefix, model := range map[string]string{href.APIRoot + href.Tasks + "/": "task", href.APIRoot + href.Uploads + "/": "upload", groupsPath: "group"} {
		if rest, found := strings.CutPrefix(h, prefix); found {
			id, err := uuid.Parse(strings.TrimSuffix(rest, "/"))
			return "core", model, id, err == nil && strings.HasSuffix(rest, "/")
		}
	}
	return "", "", uuid.Nil, false
}

// appliesTo reports whether perm is about the model.
func appliesTo(perm, app, model string) bool {
	rest, ok := strings.CutPrefix(perm, app+".")
	return ok && (strings.HasSuffix(rest, "_"+model) || strings.HasSuffix(rest, "_"+model+"_version"))
}

// checkObject validates content_object: an existing object for which role
// holds at least one permission.
func (s *Server) checkObject(ctx context.Context, objectHref string, ro db.Role) (uuid.UUID, error) {
	app, model, id, ok := objectModel(objectHref)
	if !ok {
		return id, fieldError("content_object", "Invalid href: %s", objectHref)
	}
	if err := s.objectExists(ctx, objectHref, id); err != nil {
		return id, err
	}
	if !slices.ContainsFunc(ro.Permissions, func(p string) bool { return appliesTo(p, app, model) }) {
		return id, fieldError("role", "The role %s does not carry any permission for %s.%s objects.", ro.Name, app, model)
	}
	return id, nil
}

func (s *Server) objectExists(ctx context.Context, objectHref string, id uuid.UUID) error {
	var err error
	rest := strings.TrimPrefix(objectHref, href.APIRoot)
	switch master, _, _ := strings.Cut(rest, "/"); master {
	case href.Repositories:
		_, err = s.DB.GetRepository(ctx, id)
	case href.Remotes:
		_, err = s.DB.GetRemote(ctx, id)
	case href.Distributions:
		_, err = s.DB.GetDistribution(ctx, id)
	case href.Publications:
		_, err = s.DB.GetPublication(ctx, id)
	case href.ContentGuards:
		_, err = s.DB.GetContentGuard(ctx, id)
	case href.Tasks:
		_, err = s.DB.GetTask(ctx, id)
	case href.Uploads:
		_, err = s.DB.GetUpload(ctx, id)
	case "groups":
		_, err = s.DB.GetGroup(ctx, id)
	default:
		err = db.ErrNotFound
	}
	if errors.Is(err, db.ErrNotFound) {
		return fieldError("content_object", "Object %s does not exist.", objectHref)
	}
	return err
}

// objectRoleRoutes adds list_roles/, add_role/, remove_role/ and
// my_permissions/ to every typed object.
func (s *Server) objectRoleRoutes() error {
	type fam struct{ master, plugin, endpoint string }
	var fams []fam
	for _, t := range s.Types.Repositories {
		fams = append(fams, fam{href.Repositories, t.Plugin, t.Endpoint})
	}
	for _, t := range s.Types.Remotes {
		fams = append(fams, fam{href.Remotes, t.Plugin, t.Endpoint})
	}
	for _, t := range s.Types.Distributions {
		fams = append(fams, fam{href.Distributions, t.Plugin, t.Endpoint})
	}
	for _, t := range s.Types.Publications {
		fams = append(fams, fam{href.Publications, t.Plugin, t.Endpoint})
	}
	for _, g := range s.guardTypes() {
		p, e := segments(g)
		fams = append(fams, fam{href.ContentGuards, p, e})
	}
	nested := s.spec.SchemaOf("NestedRole", nestedRole{})
	nestedResp := s.spec.SchemaOf("NestedRoleResponse", nestedRoleResponse{})
	objRoles := s.spec.SchemaOf("ObjectRolesResponse", objectRolesResponse{})
	myPerms := s.spec.SchemaOf("MyPermissionsResponse", myPermissionsResponse{})
	bad, notFound, forbidden := s.spec.ErrorResponse("Bad request"), s.spec.ErrorResponse("Not found"), s.spec.ErrorResponse("Forbidden")
	for _, f := range fams {
		one := href.APIRoot + f.master + "/" + f.plugin + "/" + f.endpoint + "/{pulp_id}/"
		id := func(action string) string { return opName(f.master, f.plugin, f.endpoint, action) }
		tags := []string{strings.ToUpper(f.master[:1]) + f.master[1:] + ": " + tag(f.plugin, f.endpoint)}
		m := auth.ModelOf(typedKinds[f.master], f.plugin, f.endpoint)
		body := &openapi.Body{Required: true, Content: map[string]*openapi.Schema{"application/json": nested}}
		if err := s.routes([]routeDef{
			{"GET", one + "list_roles/", openapi.Operation{ID: id("list_roles"), Summary: "List roles assigned to this object", Tags: tags,
				Responses: map[int]openapi.Response{200: {Description: "OK", Schema: objRoles}, 403: forbidden, 404: notFound}}, s.listObjectRoles},
			{"POST", one + "add_role/", openapi.Operation{ID: id("add_role"), Summary: "Add a role", Tags: tags, Body: body,
				Description: "Add a role for this object to users/groups.",
				Responses:   map[int]openapi.Response{201: {Description: "Created", Schema: nestedResp}, 400: bad, 403: forbidden, 404: notFound}}, s.changeObjectRole(m, true)},
			{"POST", one + "remove_role/", openapi.Operation{ID: id("remove_role"), Summary: "Remove a role", Tags: tags, Body: body,
				Description: "Remove a role for this object from users/groups.",
				Responses:   map[int]openapi.Response{201: {Description: "Created", Schema: nestedResp}, 400: bad, 403: forbidden, 404: notFound}}, s.changeObjectRole(m, false)},
			{"GET", one + "my_permissions/", openapi.Operation{ID: id("my_permissions"), Summary: "List user permissions", Tags: tags,
				Description: "List permissions available to the current user on this object.",
				Responses:   map[int]openapi.Response{200: {Description: "OK", Schema: myPerms}, 404: notFound}}, s.myPermissions(m)},
		}); err != nil {
			return err
		}
	}
	return nil
}

// GuardRBAC is Pulp's core.rbac content guard: the content app lets
// through users holding core.download_rbaccontentguard on the guard.
const GuardRBAC = "core.rbac"

// guardTypes are the content guard types the API serves.
func (s *Server) guardTypes() []string { return []string{GuardHeader, GuardRedirect, GuardRBAC} }

// objectHrefFromPath is the href of the object a per-object route is on:
// the request path up to and including {pulp_id}.
func objectHrefFromPath(r *http.Request) (string, uuid.UUID, error) {
	id, err := pathID(r)
	if err != nil {
		return "", id, err
	}
	p := r.URL.Path
	i := strings.Index(p, "/"+id.String()+"/")
	if i < 0 {
		// The path holds the id in another spelling (upper case): rebuild it.
		return "", id, errNotFound
	}
	return p[:i+len(id.String())+2], id, nil
}

func (s *Server) listObjectRoles(w http.ResponseWriter, r *http.Request) error {
	h, id, err := objectHrefFromPath(r)
	if err != nil {
		return err
	}
	if err := s.objectExists(r.Context(), h, id); err != nil {
		return errNotFound
	}
	p, err := s.DB.ListAssignments(r.Context(), db.ListParams{Filters: []db.Filter{{Field: "object_id", Value: id}},
		Ordering: []string{"role"}, Limit: 100000})
	if err != nil {
		return err
	}
	var userIDs, groupIDs []string
	for _, a := range p.Items {
		if a.UserID != nil {
			userIDs = append(userIDs, a.UserID.String())
		}
		if a.GroupID != nil {
			groupIDs = append(groupIDs, a.GroupID.String())
		}
	}
	names := map[uuid.UUID]string{}
	if len(userIDs) > 0 {
		us, err := s.DB.ListUsers(r.Context(), db.ListParams{Filters: []db.Filter{{Field: "id", Op: "in", Value: userIDs}}, Limit: len(userIDs)})
		if err != nil {
			return err
		}
		for _, u := range us.Items {
			names[u.ID] = u.Username
		}
	}
	if len(groupIDs) > 0 {
		gs, err := s.DB.ListGroups(r.Context(), db.ListParams{Filters: []db.Filter{{Field: "id", Op: "in", Value: groupIDs}}, Limit: len(groupIDs)})
		if err != nil {
			return err
		}
		for _, g := range gs.Items {
			names[g.ID] = g.Name
		}
	}
	out := objectRolesResponse{Roles: []nestedRoleResponse{}}
	for _, a := range p.Items {
		if len(out.Roles) == 0 || out.Roles[len(out.Roles)-1].Role != a.Role {
			out.Roles = append(out.Roles, nestedRoleResponse{Role: a.Role, Users: []string{}, Groups: []string{}})
		}
		nr := &out.Roles[len(out.Roles)-1]
		if a.UserID != nil {
			nr.Users = append(nr.Users, names[*a.UserID])
		} else if a.GroupID != nil {
			nr.Groups = append(nr.Groups, names[*a.GroupID])
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// changeObjectRole serves add_role/ (add) and remove_role/.
func (s *Server) changeObjectRole(m auth.Model, add bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		h, id, err := objectHrefFromPath(r)
		if err != nil {
			return err
		}
		if err := s.objectExists(r.Context(), h, id); err != nil {
			return errNotFound
		}
		var req nestedRole
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		ro, err := s.DB.GetRoleByName(r.Context(), req.Role)
		if errors.Is(err, db.ErrNotFound) {
			return fieldError("role", "Object with name=%s does not exist.", req.Role)
		}
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(ro.Permissions, func(p string) bool { return appliesTo(p, m.App, m.Name) }) {
			return fieldError("role", "The role %s does not carry any permission for %s.%s objects.", ro.Name, m.App, m.Name)
		}
		if len(req.Users) == 0 && len(req.Groups) == 0 {
			return fieldError("non_field_errors", "Either 'users' or 'groups' need to be specified.")
		}
		type holder struct{ user, group *uuid.UUID }
		var holders []holder
		fe := fieldErrors{}
		for _, name := range req.Users {
			u, err := s.DB.GetUserByName(r.Context(), name)
			if errors.Is(err, db.ErrNotFound) {
				fe.add("users", "User %s does not exist.", name)
				continue
			}
			if err != nil {
				return err
			}
			holders = append(holders, holder{user: &u.ID})
		}
		for _, name := range req.Groups {
			gs, err := s.DB.ListGroups(r.Context(), db.ListParams{Filters: []db.Filter{{Field: "name", Value: name}}, Limit: 1})
			if err != nil {
				return err
			}
			if len(gs.Items) == 0 {
				fe.add("groups", "Group %s does not exist.", name)
				continue
			}
			holders = append(holders, holder{group: &gs.Items[0].ID})
		}
		if err := fe.err(); err != nil {
			return err
		}
		for _, hd := range holders {
			if add {
				_, err = s.DB.Assign(r.Context(), db.Assignment{Role: ro.Name, UserID: hd.user, GroupID: hd.group, ObjectID: &id, ObjectHref: &h})
				if errors.Is(err, db.ErrConflict) {
					return fieldError("non_field_errors", "The role %s is already assigned to one of the users or groups on this object.", ro.Name)
				}
			} else {
				err = s.DB.Unassign(r.Context(), ro.Name, hd.user, hd.group, &id)
				if errors.Is(err, db.ErrNotFound) {
					return fieldError("non_field_errors", "The role %s is not assigned to one of the users or groups on this object.", ro.Name)
				}
			}
			if err != nil {
				return err
			}
		}
		out := nestedRoleResponse{Role: req.Role, Users: req.Users, Groups: req.Groups}
		if out.Users == nil {
			out.Users = []string{}
		}
		if out.Groups == nil {
			out.Groups = []string{}
		}
		return writeJSON(w, http.StatusCreated, out)
	}
}

// myPermissions lists the request user's permissions on the object that
// are about its model; a superuser has all of them.
func (s *Server) myPermissions(m auth.Model) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var all []string
		for _, ro := range m.Roles() {
			all = append(all, ro.Permissions...)
		}
		all = slices.Compact(slices.Sorted(slices.Values(all)))
		out := myPermissionsResponse{Permissions: []string{}}
		if s.Auth == nil {
			out.Permissions = all
			return writeJSON(w, http.StatusOK, out)
		}
		perms, err := s.Auth.Permissions(r.Context(), auth.UserFrom(r.Context()), &id)
		if err != nil {
			return err
		}
		for _, p := range all {
			if perms.Has(p) {
				out.Permissions = append(out.Permissions, p)
			}
		}
		return writeJSON(w, http.StatusOK, out)
	}
}

// BuiltinRoles are the locked roles of this API's object types: for every
// plugin type its _creator, _owner and _viewer roles (and _downloader for
// content guards), plus the core ones (core.task_owner...). The host stores
// them at startup (db.SyncBuiltinRoles).
func (s *Server) BuiltinRoles() []db.Role {
	var out []db.Role
	for _, k := range []auth.Kind{auth.Repository, auth.Remote, auth.Distribution, auth.Publication, auth.ContentGuard} {
		for _, m := range s.models(k) {
			out = append(out, m.Roles()...)
		}
	}
	return append(out, auth.CoreRoles()...)
}
