#pragma once
// Opens any supported capture file: pcap and pcapng through libpcap, anything
// else that is text as a plain-text SIP trace. The format comes from the
// file's first bytes, never from its name.
#include <string>

#include "diag/capture/captured.hpp"

namespace sw::capture {

enum class FileFormat : std::uint8_t { pcap, pcapng, text, unknown };
std::string_view to_string(FileFormat f);

// Decides from the first bytes; `unknown` for binary data of no known format.
FileFormat detect_format(std::string_view first_bytes);

// Reads the whole file, handing each SIP message to `sink`. A file that cannot
// be opened, has an unknown format, or is cut short returns an error naming the
// file and the offset; the messages before the problem have been handed over.
ReadOutcome read_capture_file(const std::string& path, const MessageSink& sink, const ProgressSink& progress,
                              FileFormat& format);

}  // namespace sw::capture
