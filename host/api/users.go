package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/auth"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
)

// Users and groups, with Pulp's shapes: users/, users/{id}/roles/,
// groups/, groups/{id}/users/ and groups/{id}/roles/. Passwords are
// write-only: no response carries one or its hash.

const (
	usersPath  = href.APIRoot + "users/"
	groupsPath = href.APIRoot + "groups/"
)

type groupRef struct {
	Name     string `json:"name"`
	PulpHref string `json:"pulp_href" format:"uri"`
}

type userResponse struct {
	PulpHref     string        `json:"pulp_href" readOnly:"true" format:"uri"`
	PRN          string        `json:"prn" readOnly:"true" doc:"The Pulp Resource Name (PRN)."`
	ID           uuid.UUID     `json:"id" readOnly:"true"`
	Username     string        `json:"username" doc:"Required. 150 characters or fewer. Letters, digits and @/./+/-/_ only."`
	FirstName    string        `json:"first_name"`
	LastName     string        `json:"last_name"`
	Email        string        `json:"email"`
	IsStaff      bool          `json:"is_staff" doc:"Designates whether the user can log into this admin site."`
	IsActive     bool          `json:"is_active" doc:"Designates whether this user should be treated as active."`
	IsSuperuser  bool          `json:"is_superuser" doc:"Designates that this user has all permissions without explicitly assigning them."`
	DateJoined   time.Time     `json:"date_joined" readOnly:"true"`
	Groups       []groupRef    `json:"groups" readOnly:"true"`
	HiddenFields []hiddenField `json:"hidden_fields" readOnly:"true" doc:"Write-only fields and whether they are set."`
}

type userRequest struct {
	Username    *string `json:"username"`
	Password    *string `json:"password,omitempty" writeOnly:"true" doc:"Users password. Set to null to disable password authentication."`
	FirstName   *string `json:"first_name,omitempty"`
	LastName    *string `json:"last_name,omitempty"`
	Email       *string `json:"email,omitempty"`
	IsStaff     *bool   `json:"is_staff,omitempty"`
	IsActive    *bool   `json:"is_active,omitempty"`
	IsSuperuser *bool   `json:"is_superuser,omitempty"`
}

// patchedUserRequest documents PATCH bodies: every field optional.
type patchedUserRequest struct {
	Username    *string `json:"username,omitempty"`
	Password    *string `json:"password,omitempty" writeOnly:"true"`
	FirstName   *string `json:"first_name,omitempty"`
	LastName    *string `json:"last_name,omitempty"`
	Email       *string `json:"email,omitempty"`
	IsStaff     *bool   `json:"is_staff,omitempty"`
	IsActive    *bool   `json:"is_active,omitempty"`
	IsSuperuser *bool   `json:"is_superuser,omitempty"`
}

type groupResponse struct {
	PulpHref string    `json:"pulp_href" readOnly:"true" format:"uri"`
	PRN      string    `json:"prn" readOnly:"true"`
	ID       uuid.UUID `json:"id" readOnly:"true"`
	Name     string    `json:"name"`
}

type groupRequest struct {
	Name string `json:"name"`
}

type groupUserResponse struct {
	Username string `json:"username"`
	PulpHref string `json:"pulp_href" readOnly:"true" format:"uri"`
	PRN      string `json:"prn" readOnly:"true"`
}

type groupUserRequest struct {
	Username string `json:"username"`
}

var usernameRE = regexp.MustCompile(`^[\w.@+-]{1,150}$`)

const minPassword = 8

func userHref(id uuid.UUID) string  { return usersPath + id.String() + "/" }
func groupHref(id uuid.UUID) string { return groupsPath + id.String() + "/" }

func renderUser(u db.User, groups []db.Group) userResponse {
	out := userResponse{PulpHref: userHref(u.ID), PRN: prn("core.user", u.ID), ID: u.ID, Username: u.Username,
		FirstName: u.FirstName, LastName: u.LastName, Email: u.Email, IsStaff: u.IsStaff, IsActive: u.IsActive,
		IsSuperuser: u.IsSuperuser, DateJoined: u.CreatedAt, Groups: []groupRef{},
		HiddenFields: []hiddenField{{Name: "password", IsSet: u.PasswordHash != ""}}}
	for _, g := range groups {
		out.Groups = append(out.Groups, groupRef{Name: g.Name, PulpHref: groupHref(g.ID)})
	}
	return out
}

func renderGroup(g db.Group) groupResponse {
	return groupResponse{PulpHref: groupHref(g.ID), PRN: prn("core.group", g.ID), ID: g.ID, Name: g.Name}
}

var userFilters = append(append(append(textFilters("username"), textFilters("first_name", "", "iexact", "contains", "icontains")...),
	textFilters("email", "", "iexact", "contains", "icontains")...),
	filter{Param: "is_active", Field: "is_active", Kind: kBool, Doc: "Filter results where is_active matches value"},
	filter{Param: "is_staff", Field: "is_staff", Kind: kBool, Doc: "Filter results where is_staff matches value"},
	filter{Param: "id", Field: "id", Kind: kUUID, Doc: "Filter results where id matches value"},
)

var userOrdering = []string{"username", "first_name", "last_name", "email", "is_active", "is_staff", "date_joined", "id"}

var groupFilters = append(textFilters("name"), filter{Param: "id", Field: "id", Kind: kUUID, Doc: "Filter results where id matches value"})

func (s *Server) userRoutes() error {
	one := usersPath + "{pulp_id}/"
	tags := []string{"Users"}
	resp := s.spec.SchemaOf("UserResponse", userResponse{})
	req := s.spec.RequestOf("User", userRequest{})
	patch := s.spec.RequestOf("PatchedUser", patchedUserRequest{})
	bad, notFound := s.spec.ErrorResponse("Bad request"), s.spec.ErrorResponse("Not found")
	body := func(sc *openapi.Schema) *openapi.Body {
		return &openapi.Body{Required: true, Content: map[string]*openapi.Schema{"application/json": sc}}
	}
	gtags := []string{"Groups"}
	gresp := s.spec.SchemaOf("GroupResponse", groupResponse{})
	greq := s.spec.RequestOf("Group", groupRequest{})
	guresp := s.spec.SchemaOf("GroupUserResponse", groupUserResponse{})
	gureq := s.spec.RequestOf("GroupUser", groupUserRequest{})
	gone := groupsPath + "{pulp_id}/"
	return s.routes([]routeDef{
		{"GET", usersPath, openapi.Operation{ID: "users_list", Summary: "List users", Tags: tags, Params: listParams(userFilters, userOrdering),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(resp)}, 400: bad}}, s.listUsers},
		{"POST", usersPath, openapi.Operation{ID: "users_create", Summary: "Create a user", Tags: tags, Body: body(req),
			Responses: map[int]openapi.Response{201: {Description: "Created", Schema: resp}, 400: bad}}, s.writeUser(true, false)},
		{"GET", one, openapi.Operation{ID: "users_read", Summary: "Inspect a user", Tags: tags, Params: selectionParams(),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: resp}, 404: notFound}}, s.readUser},
		{"PUT", one, openapi.Operation{ID: "users_update", Summary: "Update a user", Tags: tags, Body: body(req),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: resp}, 400: bad, 404: notFound}}, s.writeUser(false, false)},
		{"PATCH", one, openapi.Operation{ID: "users_partial_update", Summary: "Update a user", Tags: tags, Body: body(patch),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: resp}, 400: bad, 404: notFound}}, s.writeUser(false, true)},
		{"DELETE", one, openapi.Operation{ID: "users_delete", Summary: "Delete a user", Tags: tags,
			Responses: map[int]openapi.Response{204: {Description: "No content"}, 404: notFound}}, s.deleteUser},

		{"GET", groupsPath, openapi.Operation{ID: "groups_list", Summary: "List groups", Tags: gtags, Params: listParams(groupFilters, []string{"name", "id"}),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(gresp)}, 400: bad}},
			listOf(groupFilters, []string{"name", "id"}, "", s.DB.ListGroups, func(g db.Group) any { return renderGroup(g) })},
		{"POST", groupsPath, openapi.Operation{ID: "groups_create", Summary: "Create a group", Tags: gtags, Body: body(greq),
			Responses: map[int]openapi.Response{201: {Description: "Created", Schema: gresp}, 400: bad}}, s.writeGroup(true)},
		{"GET", gone, openapi.Operation{ID: "groups_read", Summary: "Inspect a group", Tags: gtags, Params: selectionParams(),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: gresp}, 404: notFound}}, s.readGroup},
		{"PUT", gone, openapi.Operation{ID: "groups_update", Summary: "Update a group", Tags: gtags, Body: body(greq),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: gresp}, 400: bad, 404: notFound}}, s.writeGroup(false)},
		{"PATCH", gone, openapi.Operation{ID: "groups_partial_update", Summary: "Update a group", Tags: gtags, Body: body(greq),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: gresp}, 400: bad, 404: notFound}}, s.writeGroup(false)},
		{"DELETE", gone, openapi.Operation{ID: "groups_delete", Summary: "Delete a group", Tags: gtags,
			Responses: map[int]openapi.Response{204: {Description: "No content"}, 404: notFound}}, s.deleteGroup},
		{"GET", gone + "users/", openapi.Operation{ID: "groups_users_list", Summary: "List users of a group", Tags: []string{"Groups: Users"},
			Params:    listParams(nil, nil),
			Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(guresp)}, 404: notFound}}, s.listGroupUsers},
		{"POST", gone + "users/", openapi.Operation{ID: "groups_users_create", Summary: "Add a user to a group", Tags: []string{"Groups: Users"},
			Body: body(gureq), Responses: map[int]openapi.Response{201: {Description: "Created", Schema: guresp}, 400: bad, 404: notFound}}, s.addGroupUser},
		{"DELETE", gone + "users/{user_id}/", openapi.Operation{ID: "groups_users_delete", Summary: "Remove a user from a group", Tags: []string{"Groups: Users"},
			Responses: map[int]openapi.Response{204: {Description: "No content"}, 404: notFound}}, s.removeGroupUser},
	})
}

func (s *Server) forgetCredentials() {
	if s.Users != nil {
		s.Users.Forget()
	}
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	lq, err := parseList(r, userFilters, userOrdering)
	if err != nil {
		return err
	}
	p, err := s.DB.ListUsers(r.Context(), lq.ListParams)
	if err != nil {
		return err
	}
	ids := make([]uuid.UUID, len(p.Items))
	for i, u := range p.Items {
		ids[i] = u.ID
	}
	groups, err := s.DB.GroupsOfUsers(r.Context(), ids)
	if err != nil {
		return err
	}
	return writePage(w, r, lq, p.Count, p.Items, func(u db.User) any { return renderUser(u, groups[u.ID]) })
}

func (s *Server) userDetail(ctx context.Context, u db.User) (userResponse, error) {
	groups, err := s.DB.GroupsOfUsers(ctx, []uuid.UUID{u.ID})
	if err != nil {
		return userResponse{}, err
	}
	return renderUser(u, groups[u.ID]), nil
}

func (s *Server) userFromPath(r *http.Request) (db.User, error) {
	id, err := pathID(r)
	if err != nil {
		return db.User{}, err
	}
	return s.DB.GetUser(r.Context(), id)
}

func (s *Server) readUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.userFromPath(r)
	if err != nil {
		return err
	}
	out, err := s.userDetail(r.Context(), u)
	if err != nil {
		return err
	}
	return detailJSON(w, r, http.StatusOK, out)
}

// writeUser creates or updates a user. Only superusers make superusers.
func (s *Server) writeUser(create, partial bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req userRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		u := db.User{IsActive: true}
		if !create {
			var err error
			if u, err = s.userFromPath(r); err != nil {
				return err
			}
		}
		fe := fieldErrors{}
		switch {
		case req.Username != nil && !usernameRE.MatchString(*req.Username):
			fe.add("username", "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters (at most 150).")
		case req.Username != nil:
			u.Username = *req.Username
		case !partial:
			fe.add("username", "This field is required.")
		}
		if req.Password != nil {
			switch p := *req.Password; {
			case len(p) < minPassword:
				fe.add("password", "This password is too short. It must contain at least %d characters.", minPassword)
			case len(p) > auth.MaxPasswordBytes:
				fe.add("password", "This password is too long. It must contain at most %d bytes.", auth.MaxPasswordBytes)
			}
		}
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&u.FirstName, req.FirstName)
		set(&u.LastName, req.LastName)
		set(&u.Email, req.Email)
		if req.Email != nil && *req.Email != "" && !emailRE.MatchString(*req.Email) {
			fe.add("email", "Enter a valid email address.")
		}
		if err := fe.err(); err != nil {
			return err
		}
		if req.IsSuperuser != nil && *req.IsSuperuser != u.IsSuperuser {
			if me := auth.UserFrom(r.Context()); s.Auth != nil && (me == nil || !me.IsSuperuser) {
				return errForbidden
			}
			u.IsSuperuser = *req.IsSuperuser
		}
		if req.IsStaff != nil {
			u.IsStaff = *req.IsStaff
		}
		if req.IsActive != nil {
			u.IsActive = *req.IsActive
		}
		if req.Password != nil {
			h, err := auth.Hash(*req.Password)
			if err != nil {
				return fieldError("password", "%v", err)
			}
			u.PasswordHash = h
		}
		var err error
		if create {
			u, err = s.DB.CreateUser(r.Context(), u)
		} else {
			u, err = s.DB.UpdateUser(r.Context(), u)
		}
		if errors.Is(err, db.ErrConflict) {
			return fieldError("username", "A user with that username already exists.")
		}
		if err != nil {
			return err
		}
		s.forgetCredentials()
		out, err := s.userDetail(r.Context(), u)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if create {
			status = http.StatusCreated
		}
		return writeJSON(w, status, out)
	}
}

var emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+$`)

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.DB.DeleteUser(r.Context(), id); err != nil {
		return err
	}
	s.forgetCredentials()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) groupFromPath(r *http.Request) (db.Group, error) {
	id, err := pathID(r)
	if err != nil {
		return db.Group{}, err
	}
	return s.DB.GetGroup(r.Context(), id)
}

func (s *Server) readGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := s.groupFromPath(r)
	if err != nil {
		return err
	}
	return detailJSON(w, r, http.StatusOK, renderGroup(g))
}

func (s *Server) writeGroup(create bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req groupRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		if req.Name == "" || len(req.Name) > 150 {
			return fieldError("name", "This field is required and at most 150 characters long.")
		}
		var g db.Group
		var err error
		if create {
			g, err = s.DB.CreateGroup(r.Context(), req.Name)
		} else {
			var id uuid.UUID
			if id, err = pathID(r); err != nil {
				return err
			}
			g, err = s.DB.RenameGroup(r.Context(), id, req.Name)
		}
		if errors.Is(err, db.ErrConflict) {
			return fieldError("name", "group with this name already exists.")
		}
		if err != nil {
			return err
		}
		status := http.StatusOK
		if create {
			if err := ownCreated(r, groupHref(g.ID)); err != nil {
				return err
			}
			status = http.StatusCreated
		}
		return writeJSON(w, status, renderGroup(g))
	}
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.DB.DeleteGroup(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func renderGroupUser(u db.User) any {
	return groupUserResponse{Username: u.Username, PulpHref: userHref(u.ID), PRN: prn("core.user", u.ID)}
}

func (s *Server) listGroupUsers(w http.ResponseWriter, r *http.Request) error {
	g, err := s.groupFromPath(r)
	if err != nil {
		return err
	}
	lq, err := parseList(r, nil, nil)
	if err != nil {
		return err
	}
	lq.Filters = append(lq.Filters, db.Filter{Field: "group", Value: g.ID})
	p, err := s.DB.ListUsers(r.Context(), lq.ListParams)
	if err != nil {
		return err
	}
	return writePage(w, r, lq, p.Count, p.Items, renderGroupUser)
}

func (s *Server) addGroupUser(w http.ResponseWriter, r *http.Request) error {
	g, err := s.groupFromPath(r)
	if err != nil {
		return err
	}
	var req groupUserRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, err := s.DB.GetUserByName(r.Context(), req.Username)
	if errors.Is(err, db.ErrNotFound) {
		return fieldError("username", "User matching query does not exist.")
	}
	if err != nil {
		return err
	}
	if err := s.DB.AddGroupUser(r.Context(), g.ID, u.ID); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, renderGroupUser(u))
}

func (s *Server) removeGroupUser(w http.ResponseWriter, r *http.Request) error {
	g, err := s.groupFromPath(r)
	if err != nil {
		return err
	}
	uid, err := uuid.Parse(r.PathValue("user_id"))
	if err != nil {
		return errNotFound
	}
	if err := s.DB.RemoveGroupUser(r.Context(), g.ID, uid); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
