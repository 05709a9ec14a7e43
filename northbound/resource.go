package northbound

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/brtun/brtun/topology"
	"github.com/gorilla/mux"
)

// objKey names one object: its name and, for objects of a network (subnets,
// ports), the network.
type objKey struct {
	parent string // "" for objects of no other object
	name   string
}

// resource is one object type of the API and everything in which it differs
// from the others. Its handlers (create, list, get, patch, remove) follow
// the API's conventions for every type alike: POST answers 201 with
// Location and ETag, GET one object answers its ETag, lists take filters,
// ?sort, ?limit and ?marker (listSpec), PATCH takes a JSON merge patch,
// writes take If-Match (412 unless it names the current ETag) and ?wait,
// and every read carries X-Brtun-Revision (readRevision).
//
// O is the stored object (topology.Host), V what the API shows of it
// (HostView, or O itself) and Req the body of a create (HostRequest).
// A new object type is its spec and one register call in routes.
type resource[O, V, Req any] struct {
	// collection is the path template of the list ("/v1/hosts",
	// "/v1/networks/{network}/subnets"); its one path variable, if any,
	// is the parent of objKey. item is the path variable of one object
	// below it ("host": /v1/hosts/{host}).
	collection, item string

	key  func(O) objKey                   // where the object lives (its Location)
	rev  func(O) uint64                   // its revision_number, the ETag
	view func(context.Context, O) V       // what the API shows of it (asIs: the object)
	list listSpec[V]                      // the list's filters and sort keys
	page func(items []V, next string) any // a page of the list as its body (HostList)

	// fromRequest is the object a create asks for; parent is the
	// collection's path variable ("" when it has none).
	fromRequest func(parent string, req Req) (O, error)
	// patch applies a JSON merge patch to the stored object (mergeInto
	// when the object's own JSON form is what the patch edits).
	patch func(cur *O, patch map[string]any) error

	// The store's operations on the type.
	create func(context.Context, O) (O, uint64, error)
	get    func(context.Context, objKey) (O, error)
	all    func(ctx context.Context, parent string) ([]O, error)
	update func(context.Context, objKey, topology.IfMatch, func(*O) error) (O, uint64, error)
	remove func(ctx context.Context, k objKey, cascade bool, ifMatch topology.IfMatch) (uint64, error)

	// ready, when set, lets a GET of one object take ?wait=DURATION: the
	// answer waits until ready(view), and is a 504 notReady(k, wait) with
	// the object when it does not come in time (a port: until it is bound).
	ready    func(V) bool
	notReady func(k objKey, wait time.Duration) ErrorDetail
}

// register routes the resource's handlers on r, every route on the one
// router (no subrouter), so that 405 works for all of them.
func register[O, V, Req any](r *mux.Router, a *API, res resource[O, V, Req]) {
	itemPath := res.itemPath()
	r.HandleFunc(res.collection, res.createHandler(a)).Methods(http.MethodPost)
	r.HandleFunc(res.collection, res.listHandler(a)).Methods(http.MethodGet)
	r.HandleFunc(itemPath, res.getHandler(a)).Methods(http.MethodGet)
	r.HandleFunc(itemPath, res.patchHandler(a)).Methods(http.MethodPatch)
	r.HandleFunc(itemPath, res.removeHandler(a)).Methods(http.MethodDelete)
}

func (res resource[O, V, Req]) itemPath() string { return res.collection + "/{" + res.item + "}" }

// parentVar is the name of the collection's path variable, "" when it has none.
func (res resource[O, V, Req]) parentVar() string {
	_, rest, ok := strings.Cut(res.collection, "{")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "}")
	return name
}

// keyOf is the object a request's path names (only the parent on the
// collection).
func (res resource[O, V, Req]) keyOf(r *http.Request) objKey {
	vars := mux.Vars(r)
	return objKey{parent: vars[res.parentVar()], name: vars[res.item]}
}

// path is the URL path of the object k names.
func (res resource[O, V, Req]) path(k objKey) string {
	collection := res.collection
	if v := res.parentVar(); v != "" {
		collection = strings.Replace(collection, "{"+v+"}", url.PathEscape(k.parent), 1)
	}
	return collection + "/" + url.PathEscape(k.name)
}

func (res resource[O, V, Req]) createHandler(a *API) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		var obj O
		p, err := a.parseWriteParams(r)
		if err == nil {
			err = decodeBody(w, r, &req)
		}
		if err == nil {
			obj, err = res.fromRequest(res.keyOf(r).parent, req)
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		obj, rev, err := res.create(r.Context(), obj)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.finishCreate(w, r, p, rev, res.path(res.key(obj)), res.rev(obj), func() any { return res.view(r.Context(), obj) })
	}
}

func (res resource[O, V, Req]) listHandler(a *API) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := res.list.parseList(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		objs, err := res.all(r.Context(), res.keyOf(r).parent)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		views := make([]V, 0, len(objs))
		for _, o := range objs {
			views = append(views, res.view(r.Context(), o))
		}
		items, next := res.list.apply(q, views)
		setNextLink(w, r, next)
		writeJSON(w, http.StatusOK, res.page(items, next))
	}
}

func (res resource[O, V, Req]) getHandler(a *API) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		wait, err := res.parseGetWait(a, r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		k := res.keyOf(r)
		obj, err := res.get(r.Context(), k)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		view := res.view(r.Context(), obj)
		if wait > 0 && !res.ready(view) {
			ctx, cancel := context.WithTimeout(r.Context(), wait)
			obj, view, err = res.waitReady(ctx, k)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					a.writeError(w, r, err) // the object was deleted meanwhile, or the store failed
					return
				}
				setETag(w, res.rev(obj))
				writeJSON(w, http.StatusGatewayTimeout, ErrorBody{Error: res.notReady(k, wait), Object: view})
				return
			}
		}
		setETag(w, res.rev(obj))
		writeJSON(w, http.StatusOK, view)
	}
}

// parseGetWait reads the query of a GET of one object: none, or ?wait
// when the type has a ready state.
func (res resource[O, V, Req]) parseGetWait(a *API, r *http.Request) (time.Duration, error) {
	if res.ready == nil {
		return 0, checkQuery(r)
	}
	if err := checkQuery(r, "wait"); err != nil {
		return 0, err
	}
	if s := r.URL.Query().Get("wait"); s != "" {
		return a.parseWait(s)
	}
	return 0, nil
}

// How often a GET with ?wait reads the object again: soon at first (on a
// connected host a new port binds within milliseconds, and a CNI ADD waits
// for it), then after each wait one and a half times the one before, up to
// objectPollInterval.
const (
	objectPollFirst    = 4 * time.Millisecond
	objectPollInterval = 50 * time.Millisecond
)

// waitReady reads the object until its view is ready; when ctx ends first
// it returns the object as last seen and ctx's error.
func (res resource[O, V, Req]) waitReady(ctx context.Context, k objKey) (O, V, error) {
	delay := objectPollFirst
	timer := time.NewTimer(delay)
	defer timer.Stop()
	var obj O
	var view V
	for {
		o, err := res.get(ctx, k)
		if err != nil {
			if ctx.Err() != nil {
				return obj, view, ctx.Err()
			}
			return obj, view, err
		}
		if obj, view = o, res.view(ctx, o); res.ready(view) {
			return obj, view, nil
		}
		select {
		case <-ctx.Done():
			return obj, view, ctx.Err()
		case <-timer.C:
		}
		delay = min(delay+delay/2, objectPollInterval)
		timer.Reset(delay)
	}
}

func (res resource[O, V, Req]) patchHandler(a *API) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := a.parseWriteParams(r)
		var patch map[string]any
		if err == nil {
			patch, err = readPatch(w, r)
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		obj, rev, err := res.update(r.Context(), res.keyOf(r), p.ifMatch, func(cur *O) error { return res.patch(cur, patch) })
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		setETag(w, res.rev(obj))
		a.finishWrite(w, r, p, rev, http.StatusOK, func() any { return res.view(r.Context(), obj) })
	}
}

func (res resource[O, V, Req]) removeHandler(a *API) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := a.parseWriteParams(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		rev, err := res.remove(r.Context(), res.keyOf(r), p.cascade, p.ifMatch)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.finishWrite(w, r, p, rev, http.StatusNoContent, nil)
	}
}

// asIs is the view of a type the API shows as stored.
func asIs[O any](_ context.Context, o O) O { return o }

// mergeInto is the patch of a type whose JSON form, as stored, is what a
// merge patch edits.
func mergeInto[O any](cur *O, patch map[string]any) error {
	next, err := mergePatch(*cur, patch)
	*cur = next
	return err
}
