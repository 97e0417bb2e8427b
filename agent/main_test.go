package agent

import (
	"testing"

	"metacircular.net/mcp/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, removeMCPBinary) }
