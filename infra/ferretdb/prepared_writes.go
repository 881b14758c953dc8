// Added to FerretDB's SQLite backend (package sqlite) by infra/store.py when it builds FerretDB.

package sqlite

import (
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// insertStatement is one prepared INSERT of up to a batch of documents.
type insertStatement struct {
	q    string
	args []any
}

// prepareInsertStatements encodes `docs` for INSERTs of `batchSize` documents each, before the write
// transaction begins: a database's writes take turns (writer_turn.go), and encoding is most of their work,
// which concurrent commands can then do side by side.
func prepareInsertStatements(table string, capped bool, docs []*types.Document, batchSize int) ([]insertStatement, error) {
	if batchSize < 1 {
		panic("batch-size should be greater or equal to 1")
	}

	statements := make([]insertStatement, 0, (len(docs)+batchSize-1)/batchSize)

	for len(docs) > 0 {
		var batch []*types.Document

		i := min(batchSize, len(docs))
		batch, docs = docs[:i], docs[i:]

		q, args, err := prepareInsertStatement(table, capped, batch)
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		statements = append(statements, insertStatement{q: q, args: args})
	}

	return statements, nil
}

// prepareUpdateRows encodes each of `docs` and its `_id` (the arguments of UpdateAll's statement) before the
// write transaction begins, for the same reason.
func prepareUpdateRows(docs []*types.Document) ([][2]any, error) {
	rows := make([][2]any, len(docs))

	for i, doc := range docs {
		b, err := sjson.Marshal(doc)
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		id, _ := doc.Get("_id")
		must.NotBeZero(id)

		rows[i] = [2]any{string(b), string(must.NotFail(sjson.MarshalSingleValue(id)))}
	}

	return rows, nil
}
