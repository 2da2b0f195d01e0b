package memstore_test

import (
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/store/memstore"
	"github.com/seamless-data/seamless/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) seamless.Store { return memstore.New() })
}
