// Package userlog formats and parses HTCondor's job event log (the "user
// log" a submit description names with `log = FILE`): the text that
// condor_wait, condor_userlog and users read to follow their jobs.
//
// It owns the file format and the Writer's append contract; it imports
// only the standard library and knows nothing of queues, daemons or ClassAds (a job ad information event's
// attributes are ClassAd source text). The schedd's shell calls Writer;
// tools call Parse.
//
// # Format
//
// Each event is a header line
//
//	NNN (CCC.PPP.SSS) YYYY-MM-DD HH:MM:SS Text
//
// (event code and ids zero-padded to three digits, wider when needed), body
// lines indented with a tab (four spaces for a few events, as HTCondor
// writes them), and a line holding only "..." that ends the event.
//
// # Writing
//
// Format renders one event; a Writer appends events to a file, each batch
// in one synced write, and AppendOnce skips events already at the end of
// the file so that replaying after a crash never writes an event twice
// (see Writer for the exact contract).
//
// # Reading
//
// Parse reads a log back for condor_wait, condor_userlog and tests. It
// tolerates a torn last event and body lines it does not know, so it reads
// HTCondor's own logs too.
package userlog
