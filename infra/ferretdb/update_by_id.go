// Added to FerretDB's handler (package handler) by infra/store.py when it builds FerretDB.

package handler

import (
	"context"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// maxUpdatesByID bounds the `_id`s of one lookup (the SQLite backend pushes at most 1,000 down).
const maxUpdatesByID = 1000

// updateByID runs an update command whose statements each change (replace, or update with operators) or
// upsert one document given by its string or ObjectID `_id`, every `_id` a different one: one lookup of
// them all, then one transaction for the changed documents and one for the inserted ones, in place of a
// lookup and a transaction per statement. Each statement is applied by common.UpdateDocument to the
// document the lookup found, as before; only its writes are gathered (with distinct `_id`s no statement
// can see another's write). For any other command it does nothing and returns done = false.
//
// When every statement replaces its document with one that has a field besides `_id`, the lookup reads only
// the stored `_id`s (decoding whole stored documents was half the cost of such a command): a replacement
// does not depend on what it replaces. Such a command counts every matched document as modified, also
// one replaced by an identical document, which it writes again (MongoDB counts only real changes).
func (h *Handler) updateByID(ctx context.Context, c backends.Collection, params *common.UpdateParams) (
	matched, modified int32, upserted *types.Array, done bool, err error,
) {
	if h.DisablePushdown || len(params.Updates) < 2 || len(params.Updates) > maxUpdatesByID {
		return 0, 0, nil, false, nil
	}

	ids := types.MakeArray(len(params.Updates))
	keys := make([]string, len(params.Updates))
	seen := make(map[string]struct{}, len(params.Updates))
	onlyIDs := true

	for i, u := range params.Updates {
		if u.Multi || u.Filter.Len() != 1 {
			return 0, 0, nil, false, nil
		}

		if u.HasUpdateOperators || !setsAField(u.Update) {
			onlyIDs = false
		}

		id, _ := u.Filter.Get("_id")

		key, ok := idKey(id)
		if !ok {
			return 0, 0, nil, false, nil
		}

		if _, twice := seen[key]; twice {
			return 0, 0, nil, false, nil
		}

		seen[key] = struct{}{}
		keys[i] = key
		ids.Append(id)
	}

	filter := must.NotFail(types.NewDocument("_id", must.NotFail(types.NewDocument("$in", ids))))

	res, err := c.Query(ctx, &backends.QueryParams{Filter: filter, OnlyIDs: onlyIDs})
	if err != nil {
		return 0, 0, nil, true, lazyerrors.Error(err)
	}

	closer := iterator.NewMultiCloser(res.Iter)
	stored, err := iterator.ConsumeValues(common.FilterIterator(res.Iter, closer, filter))
	closer.Close()

	if err != nil {
		return 0, 0, nil, true, lazyerrors.Error(err)
	}

	byKey := make(map[string]*types.Document, len(stored))

	for _, doc := range stored {
		if key, ok := idKey(must.NotFail(doc.Get("_id"))); ok {
			byKey[key] = doc
		}
	}

	writes := &gatheredWrites{Collection: c}
	upserted = new(types.Array)

	for i := range params.Updates {
		var found []*types.Document
		if doc := byKey[keys[i]]; doc != nil {
			found = append(found, doc)
		}

		iter := iterator.Values(iterator.ForSlice(found))
		result, err := common.UpdateDocument(ctx, writes, "update", iter, &params.Updates[i])
		iter.Close()

		if err != nil {
			return 0, 0, nil, true, lazyerrors.Error(err)
		}

		matched += result.Matched.Count
		modified += result.Modified.Count

		if result.Upserted.Doc != nil {
			upserted.Append(must.NotFail(types.NewDocument(
				"index", int32(upserted.Len()),
				"_id", must.NotFail(result.Upserted.Doc.Get("_id")),
			)))

			// in case of upsert, MongoDB sets the matched count to 1
			matched++
		}
	}

	if len(writes.updates) > 0 {
		if _, err = c.UpdateAll(ctx, &backends.UpdateAllParams{Docs: writes.updates}); err != nil {
			return 0, 0, nil, true, lazyerrors.Error(err)
		}
	}

	if len(writes.inserts) > 0 {
		if _, err = c.InsertAll(ctx, &backends.InsertAllParams{Docs: writes.inserts}); err != nil {
			return 0, 0, nil, true, lazyerrors.Error(err)
		}
	}

	return matched, modified, upserted, true, nil
}

// setsAField is true when the replacement document `update` has a field besides `_id`.
func setsAField(update *types.Document) bool {
	for _, key := range update.Keys() {
		if key != "_id" {
			return true
		}
	}

	return false
}

// idKey is a string or ObjectID `_id` as its SQLite key; ok is false for any other type.
func idKey(id any) (string, bool) {
	switch id.(type) {
	case string, types.ObjectID:
		key, err := sjson.MarshalSingleValue(id)
		return string(key), err == nil
	default:
		return "", false
	}
}

// gatheredWrites is a collection whose inserts and updates are kept, to be written together afterwards.
type gatheredWrites struct {
	backends.Collection
	updates, inserts []*types.Document
}

func (w *gatheredWrites) UpdateAll(_ context.Context, params *backends.UpdateAllParams) (*backends.UpdateAllResult, error) {
	w.updates = append(w.updates, params.Docs...)
	return &backends.UpdateAllResult{Updated: int32(len(params.Docs))}, nil
}

func (w *gatheredWrites) InsertAll(_ context.Context, params *backends.InsertAllParams) (*backends.InsertAllResult, error) {
	w.inserts = append(w.inserts, params.Docs...)
	return new(backends.InsertAllResult), nil
}
