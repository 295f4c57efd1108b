#pragma once
// Plain-text SIP traces: raw messages separated by blank lines, sngrep's text
// export, Asterisk `pjsip set logger on` output, Kamailio/sipdump text. Each
// message keeps the timestamp and addresses its trace gives, when it gives them.
#include <istream>
#include <string>

#include "diag/capture/captured.hpp"

namespace sw::capture {

// Reads `in` line by line (bounded memory) and hands each SIP message found to
// `sink`. `name` is the file name used in errors. Text that is not SIP is
// skipped; a block that starts like SIP and cannot be framed is counted in
// stats.unreadable_text. Only an I/O error stops it.
ReadOutcome read_text_trace(std::istream& in, const std::string& name, const MessageSink& sink,
                            const ProgressSink& progress = {}, std::uint64_t total_bytes = 0);

}  // namespace sw::capture
