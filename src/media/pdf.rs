//! The text of PDF files, through the `pdf-extract` crate (lopdf underneath). A PDF from
//! anyone is hostile input: extraction runs with its panics caught, on a blocking thread with
//! a deadline when called from async code, and its text is bounded.

use std::time::Duration;

/// Largest PDF whose text is extracted, in bytes.
pub const MAX_PDF_BYTES: u64 = 25 * 1024 * 1024;
/// How long extracting one PDF may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// Whether `bytes` are a PDF (by their first bytes, not by what the sender claims).
pub fn is_pdf(bytes: &[u8]) -> bool {
    // The header may follow a few junk bytes (the spec allows it within the first 1024).
    bytes.windows(5).take(1024).any(|window| window == b"%PDF-")
}

/// Whether a file named `name` is a PDF by its extension.
pub fn has_pdf_name(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("pdf"))
}

/// The text of the PDF `bytes`, at most `max_chars` characters (a note says when it was cut);
/// `Err` says why there is none, in words for the model or the room.
pub fn text_of(bytes: &[u8], max_chars: usize) -> Result<String, String> {
    if !is_pdf(bytes) {
        return Err("it is not a PDF".into());
    }
    let extracted = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes));
    let text = match extracted {
        Ok(Ok(text)) => text,
        Ok(Err(err)) => return Err(format!("its text could not be extracted ({err})")),
        Err(_) => return Err("its text could not be extracted (the PDF is malformed)".into()),
    };
    let text = tidy(&text);
    if text.is_empty() {
        return Err("it has no text to extract (a scan or only images?)".into());
    }
    let total = text.chars().count();
    if total <= max_chars {
        return Ok(text);
    }
    let kept: String = text.chars().take(max_chars).collect();
    Ok(format!(
        "{kept}\n[… cut: the first {max_chars} of {total} characters]"
    ))
}

/// [`text_of`] on a blocking thread, given up after a deadline.
pub async fn text_of_async(bytes: Vec<u8>, max_chars: usize) -> Result<String, String> {
    let work = tokio::task::spawn_blocking(move || text_of(&bytes, max_chars));
    match tokio::time::timeout(DEADLINE, work).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err("its text could not be extracted (the PDF is malformed)".into()),
        Err(_) => Err("its text could not be extracted in time".into()),
    }
}

/// Trailing spaces trimmed, runs of blank lines made one, no form feeds.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.replace('\u{c}', "");
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A one-page PDF with a text layer (see `tests/data/media/README.md`).
    const INVOICE: &[u8] = include_bytes!("../../tests/data/media/invoice.pdf");

    #[test]
    fn the_text_of_a_pdf_is_extracted() {
        assert!(is_pdf(INVOICE));
        let text = text_of(INVOICE, 1000).unwrap();
        assert!(text.contains("Invoice 4711: total 99 EUR"), "{text:?}");
        let cut = text_of(INVOICE, 7).unwrap();
        assert!(cut.starts_with("Invoice") && cut.contains("cut"), "{cut:?}");
    }

    #[test]
    fn broken_and_fake_pdfs_give_a_reason_not_a_panic() {
        assert!(text_of(b"not a pdf at all", 100).is_err());
        let mut pdf = INVOICE.to_vec();
        pdf.truncate(pdf.len() / 2);
        // A cut PDF either still yields its text (lopdf rebuilds a lost cross-reference
        // table) or a reason; it never brings the service down.
        let _ = text_of(&pdf, 100);
        assert!(text_of(b"%PDF-1.7\n garbage \x00\x01\x02 endobj", 100).is_err());
        assert!(has_pdf_name("Report.PDF") && !has_pdf_name("pdf"));
    }
}
