package schedd

import "context"

func (s *Schedd) writeUserLogs(ctx context.Context) error { <-ctx.Done(); return nil }
