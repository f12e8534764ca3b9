//! An offer rendered to a PDF (`protocol-spec/work.md`, "Offer document"): the office's
//! name, the lead's, the number, dates, one row per service, and per kind of billing
//! the VAT summary by rate — the same integer-grosze amounts [`super::offers`] computes,
//! so the PDF can never disagree with the offer.
//!
//! Layout is ours (a table on A4, lines wrapped by measured glyph advances, pages
//! broken with the heading repeated); writing the PDF is krilla's, which subsets the
//! embedded DejaVu Sans and writes a ToUnicode map, so every Polish letter prints and
//! the text reads back (search, copy, accessibility). The output depends only on the
//! input: no clock, no randomness — the same offer renders to the same bytes.

use super::offers::{line_amounts, totals, Billing, OfferLine, Summary};
use super::replies::format_amount;
use chrono::NaiveDate;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};
use krilla::Document;
use skrifa::charmap::Charmap;
use skrifa::instance::{LocationRef, Size};
use skrifa::metrics::GlyphMetrics;
use skrifa::{FontRef, MetadataProvider};

static REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// The language an offer is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Polish (the default: the offices' customers are Polish).
    #[default]
    Pl,
    /// English.
    En,
}

impl Lang {
    /// `pl` or `en`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_lowercase().as_str() {
            "pl" | "pl-pl" => Some(Self::Pl),
            "en" | "en-gb" | "en-us" => Some(Self::En),
            _ => None,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Self::Pl => "pl",
            Self::En => "en",
        }
    }
}

/// What an offer document shows.
#[derive(Debug, Clone)]
pub struct OfferDocument<'a> {
    /// Language of the labels.
    pub lang: Lang,
    /// The office making the offer.
    pub firm: &'a str,
    /// The lead (or customer) it is made to.
    pub customer: &'a str,
    /// Their NIP, when known.
    pub nip: Option<&'a str>,
    /// The offer's number as people quote it.
    pub number: &'a str,
    /// The day it was made.
    pub issued: NaiveDate,
    /// Valid through this day.
    pub valid_until: NaiveDate,
    /// The services.
    pub lines: &'a [OfferLine],
}

/// The name an offer's PDF is stored under in the file.
pub fn file_name(lang: Lang, number: &str) -> String {
    match lang {
        Lang::Pl => format!("Oferta {number}.pdf"),
        Lang::En => format!("Offer {number}.pdf"),
    }
}

struct Labels {
    title: &'static str,
    number: &'static str,
    from: &'static str,
    to: &'static str,
    nip: &'static str,
    issued: &'static str,
    valid: &'static str,
    columns: [&'static str; 7],
    monthly: &'static str,
    once: &'static str,
    monthly_summary: &'static str,
    once_summary: &'static str,
    rate: &'static str,
    total: &'static str,
    notes: [&'static str; 2],
    page: &'static str,
}

fn labels(lang: Lang) -> Labels {
    match lang {
        Lang::Pl => Labels {
            title: "Oferta",
            number: "nr",
            from: "Oferent",
            to: "Dla",
            nip: "NIP",
            issued: "Data wystawienia",
            valid: "Ważna do",
            columns: [
                "Lp.",
                "Usługa",
                "Rozliczenie",
                "Netto",
                "VAT",
                "Kwota VAT",
                "Brutto",
            ],
            monthly: "miesięcznie",
            once: "jednorazowo",
            monthly_summary: "Opłaty miesięczne",
            once_summary: "Opłaty jednorazowe",
            rate: "Stawka",
            total: "Razem",
            notes: [
                "Kwoty w złotych (PLN). Podatek VAT w podsumowaniu liczony od sumy wartości netto w każdej stawce.",
                "zw. — zwolnione z podatku VAT.",
            ],
            page: "Strona",
        },
        Lang::En => Labels {
            title: "Offer",
            number: "no.",
            from: "From",
            to: "To",
            nip: "Tax ID (NIP)",
            issued: "Date",
            valid: "Valid until",
            columns: [
                "No.", "Service", "Billing", "Net", "VAT", "VAT amount", "Gross",
            ],
            monthly: "monthly",
            once: "one-off",
            monthly_summary: "Monthly fees",
            once_summary: "One-off prices",
            rate: "Rate",
            total: "Total",
            notes: [
                "Amounts in Polish złoty (PLN). The summary's VAT is computed from the sum of net values at each rate.",
                "zw. — exempt from VAT.",
            ],
            page: "Page",
        },
    }
}

fn date(lang: Lang, d: NaiveDate) -> String {
    match lang {
        Lang::Pl => d.format("%d.%m.%Y").to_string(),
        Lang::En => d.format("%Y-%m-%d").to_string(),
    }
}

/// Amounts in the table: grouped złoty and grosze, the currency said once.
fn money(grosze: i64) -> String {
    format_amount(grosze).trim_end_matches(" zł").to_owned()
}

/// One thing drawn on a page, in points from the top-left corner (`y` is the baseline).
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        text: String,
    },
    Rule {
        x: f32,
        y: f32,
        width: f32,
        weight: f32,
    },
}

/// Glyph advances of the two faces, to measure a line before it is drawn.
struct Measure<'a> {
    faces: [(Charmap<'a>, GlyphMetrics<'a>, f32); 2],
}

impl<'a> Measure<'a> {
    fn new() -> Result<Self, String> {
        let face = |data: &'a [u8]| -> Result<(Charmap<'a>, GlyphMetrics<'a>, f32), String> {
            let font = FontRef::new(data).map_err(|e| format!("embedded font: {e}"))?;
            let upem = f32::from(
                font.metrics(Size::unscaled(), LocationRef::default())
                    .units_per_em,
            )
            .max(1.0);
            Ok((
                font.charmap(),
                font.glyph_metrics(Size::unscaled(), LocationRef::default()),
                upem,
            ))
        };
        Ok(Self {
            faces: [face(REGULAR)?, face(BOLD)?],
        })
    }

    fn width(&self, text: &str, size: f32, bold: bool) -> f32 {
        let [regular, heavy] = &self.faces;
        let (charmap, metrics, upem) = if bold { heavy } else { regular };
        let units: f32 = text
            .chars()
            .map(|c| {
                let glyph = charmap.map(c).unwrap_or_default();
                metrics.advance_width(glyph).unwrap_or(0.0)
            })
            .sum();
        units * size / upem
    }

    /// Breaks `text` into lines no wider than `max`: at spaces, and inside a word only
    /// when the word alone is too wide.
    fn wrap(&self, text: &str, max: f32, size: f32, bold: bool) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if self.width(&candidate, size, bold) <= max {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            for c in word.chars() {
                let mut next = line.clone();
                next.push(c);
                if !line.is_empty() && self.width(&next, size, bold) > max {
                    lines.push(std::mem::take(&mut line));
                    line.push(c);
                } else {
                    line = next;
                }
            }
        }
        if !line.is_empty() || lines.is_empty() {
            lines.push(line);
        }
        lines
    }
}

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 45.0;
const RIGHT: f32 = PAGE_W - MARGIN;
/// Lowest baseline of content; the footer sits below it.
const BOTTOM: f32 = PAGE_H - 70.0;
const BODY: f32 = 9.0;
const LEADING: f32 = 12.0;

/// Table columns: `(x, right-aligned)`; a right-aligned column's `x` is its right edge.
const COLUMNS: [(f32, bool); 7] = [
    (MARGIN, false),
    (MARGIN + 24.0, false),
    (MARGIN + 212.0, false),
    (MARGIN + 345.0, true),
    (MARGIN + 380.0, true),
    (MARGIN + 435.0, true),
    (RIGHT, true),
];
const SERVICE_WIDTH: f32 = 184.0;

struct Layout<'m> {
    measure: &'m Measure<'m>,
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl Layout<'_> {
    fn page(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        // `last` is in range: the list was just made non-empty.
        #[allow(clippy::indexing_slicing)]
        &mut self.pages[last]
    }

    fn text(&mut self, x: f32, size: f32, bold: bool, text: &str) {
        let y = self.y;
        self.page().push(Op::Text {
            x,
            y,
            size,
            bold,
            text: text.to_owned(),
        });
    }

    fn text_right(&mut self, right: f32, size: f32, bold: bool, text: &str) {
        let x = right - self.measure.width(text, size, bold);
        self.text(x, size, bold, text);
    }

    fn cell(&mut self, column: usize, size: f32, bold: bool, text: &str) {
        if let Some(&(x, right)) = COLUMNS.get(column) {
            if right {
                self.text_right(x, size, bold, text);
            } else {
                self.text(x, size, bold, text);
            }
        }
    }

    fn rule(&mut self, weight: f32) {
        self.rule_from(MARGIN, weight);
    }

    fn rule_from(&mut self, x: f32, weight: f32) {
        let y = self.y;
        self.page().push(Op::Rule {
            x,
            y,
            width: RIGHT - x,
            weight,
        });
    }

    /// Starts a new page when `height` more does not fit; says whether it did.
    fn room_for(&mut self, height: f32) -> bool {
        if self.y + height <= BOTTOM {
            return false;
        }
        self.pages.push(Vec::new());
        self.y = MARGIN + BODY;
        true
    }

    fn table_heading(&mut self, l: &Labels) {
        for (i, h) in l.columns.iter().enumerate() {
            self.cell(i, 8.0, true, h);
        }
        self.y += 5.0;
        self.rule(0.8);
        self.y += LEADING;
    }
}

fn summary_block(out: &mut Layout<'_>, l: &Labels, title: &str, s: &Summary) {
    if s.rates.is_empty() {
        return;
    }
    out.room_for(LEADING * (s.rates.len() as f32 + 4.0));
    out.y += 6.0;
    out.text(MARGIN, 10.0, true, title);
    out.y += LEADING + 2.0;
    let head = [l.rate, l.columns[3], l.columns[5], l.columns[6]];
    for (column, h) in [2usize, 3, 5, 6].into_iter().zip(head) {
        out.cell(column, 8.0, true, h);
    }
    let from = COLUMNS[2].0;
    out.y += 5.0;
    out.rule_from(from, 0.5);
    out.y += LEADING;
    for r in &s.rates {
        out.cell(2, BODY, false, r.rate.label());
        out.cell(3, BODY, false, &money(r.amounts.net));
        out.cell(5, BODY, false, &money(r.amounts.vat));
        out.cell(6, BODY, false, &money(r.amounts.gross));
        out.y += LEADING;
    }
    out.y -= LEADING - 5.0;
    out.rule_from(from, 0.5);
    out.y += LEADING;
    out.cell(2, BODY, true, l.total);
    out.cell(3, BODY, true, &money(s.total.net));
    out.cell(5, BODY, true, &money(s.total.vat));
    out.cell(6, BODY, true, &money(s.total.gross));
    out.y += LEADING + 6.0;
}

/// Lays the offer out on pages (the footers come last, when the page count is known).
fn layout(o: &OfferDocument<'_>, measure: &Measure<'_>) -> Vec<Vec<Op>> {
    let l = labels(o.lang);
    let mut out = Layout {
        measure,
        pages: vec![Vec::new()],
        y: MARGIN + 18.0,
    };
    out.text(MARGIN, 20.0, true, l.title);
    out.text_right(RIGHT, 11.0, false, &format!("{} {}", l.number, o.number));
    out.y += 30.0;
    let half = (RIGHT - MARGIN) / 2.0;
    let top = out.y;
    out.text(MARGIN, 8.0, true, l.from);
    out.y += LEADING + 1.0;
    for line in measure.wrap(o.firm, half - 15.0, 11.0, false) {
        out.text(MARGIN, 11.0, false, &line);
        out.y += LEADING + 2.0;
    }
    let left_end = out.y;
    out.y = top;
    out.text(MARGIN + half, 8.0, true, l.to);
    out.y += LEADING + 1.0;
    for line in measure.wrap(o.customer, half, 11.0, false) {
        out.text(MARGIN + half, 11.0, false, &line);
        out.y += LEADING + 2.0;
    }
    if let Some(nip) = o.nip {
        out.text(MARGIN + half, BODY, false, &format!("{} {nip}", l.nip));
        out.y += LEADING;
    }
    out.y = out.y.max(left_end) + 8.0;
    let dates = format!(
        "{}: {}     {}: {}",
        l.issued,
        date(o.lang, o.issued),
        l.valid,
        date(o.lang, o.valid_until)
    );
    out.text(MARGIN, BODY, false, &dates);
    out.y += LEADING * 2.0;
    out.table_heading(&l);
    for (i, line) in o.lines.iter().enumerate() {
        let wrapped = measure.wrap(&line.service, SERVICE_WIDTH, BODY, false);
        if out.room_for(LEADING * wrapped.len() as f32 + 6.0) {
            out.table_heading(&l);
        }
        let a = line_amounts(line);
        out.cell(0, BODY, false, &format!("{}.", i + 1));
        out.cell(
            2,
            BODY,
            false,
            match line.billing {
                Billing::Monthly => l.monthly,
                Billing::OneOff => l.once,
            },
        );
        out.cell(3, BODY, false, &money(a.net));
        out.cell(4, BODY, false, line.vat.label());
        out.cell(5, BODY, false, &money(a.vat));
        out.cell(6, BODY, false, &money(a.gross));
        for (n, part) in wrapped.iter().enumerate() {
            if n > 0 {
                out.y += LEADING;
            }
            out.cell(1, BODY, false, part);
        }
        out.y += 5.0;
        out.rule(0.25);
        out.y += LEADING;
    }
    let t = totals(o.lines);
    out.y += 6.0;
    summary_block(&mut out, &l, l.monthly_summary, &t.monthly);
    summary_block(&mut out, &l, l.once_summary, &t.one_off);
    out.y += 10.0;
    for note in l.notes {
        for line in measure.wrap(note, RIGHT - MARGIN, 8.0, false) {
            out.room_for(LEADING);
            out.text(MARGIN, 8.0, false, &line);
            out.y += LEADING - 1.0;
        }
    }
    let count = out.pages.len();
    let footer = format!("{} · {} {} {}", o.firm, l.title, l.number, o.number);
    let footer = measure
        .wrap(&footer, RIGHT - MARGIN - 80.0, 7.5, false)
        .into_iter()
        .next()
        .unwrap_or_default();
    for (i, page) in out.pages.iter_mut().enumerate() {
        let y = PAGE_H - 40.0;
        page.push(Op::Rule {
            x: MARGIN,
            y: y - 11.0,
            width: RIGHT - MARGIN,
            weight: 0.25,
        });
        page.push(Op::Text {
            x: MARGIN,
            y,
            size: 7.5,
            bold: false,
            text: footer.clone(),
        });
        let n = format!("{} {} / {count}", l.page, i + 1);
        page.push(Op::Text {
            x: RIGHT - measure.width(&n, 7.5, false),
            y,
            size: 7.5,
            bold: false,
            text: n,
        });
    }
    out.pages
}

/// Renders an offer to PDF bytes.
pub fn render(o: &OfferDocument<'_>) -> Result<Vec<u8>, String> {
    let measure = Measure::new()?;
    let pages = layout(o, &measure);
    let regular = Font::new(REGULAR.into(), 0).ok_or("the embedded font does not load")?;
    let bold = Font::new(BOLD.into(), 0).ok_or("the embedded font does not load")?;
    let l = labels(o.lang);
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(format!("{} {} {}", l.title, l.number, o.number))
            .language(o.lang.tag().to_owned())
            .creator("Ledgerline".to_owned()),
    );
    let settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or("page size")?;
    for ops in pages {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        for op in ops {
            match op {
                Op::Text {
                    x,
                    y,
                    size,
                    bold: heavy,
                    text,
                } => surface.draw_text(
                    Point::from_xy(x, y),
                    if heavy { bold.clone() } else { regular.clone() },
                    size,
                    &text,
                    false,
                    TextDirection::Auto,
                ),
                Op::Rule {
                    x,
                    y,
                    width,
                    weight,
                } => {
                    let mut path = PathBuilder::new();
                    if let Some(rect) = Rect::from_xywh(x, y - weight / 2.0, width, weight) {
                        path.push_rect(rect);
                    }
                    if let Some(path) = path.finish() {
                        surface.draw_path(&path);
                    }
                }
            }
        }
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|_| "the PDF could not be written".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::offers::VatRate;

    fn line(service: &str, billing: Billing, net: i64, vat: VatRate) -> OfferLine {
        OfferLine {
            service: service.into(),
            billing,
            net,
            vat,
        }
    }

    fn offer(lines: &[OfferLine]) -> OfferDocument<'_> {
        OfferDocument {
            lang: Lang::Pl,
            firm: "Biuro Rachunkowe Żółć sp. z o.o.",
            customer: "Łukasz Gęślą — Usługi Źródlane",
            nip: Some("5260250274"),
            number: "3F2A91",
            issued: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default(),
            valid_until: NaiveDate::from_ymd_opt(2026, 12, 30).unwrap_or_default(),
            lines,
        }
    }

    fn texts(pages: &[Vec<Op>]) -> Vec<String> {
        pages
            .iter()
            .flatten()
            .filter_map(|op| match op {
                Op::Text { text, .. } => Some(text.clone()),
                Op::Rule { .. } => None,
            })
            .collect()
    }

    #[test]
    fn wrapping_keeps_every_word_and_fits_the_column() {
        let m = Measure::new().unwrap_or_else(|e| unreachable!("{e}"));
        let text = "Prowadzenie pełnej księgowości wraz z obsługą kadrowo-płacową i sprawozdawczością GUS dla spółki";
        let lines = m.wrap(text, SERVICE_WIDTH, BODY, false);
        assert!(lines.len() > 1, "{lines:?}");
        for l in &lines {
            assert!(m.width(l, BODY, false) <= SERVICE_WIDTH, "{l}");
        }
        assert_eq!(lines.join(" "), text);
        // A word wider than the column is broken inside, nothing lost.
        let long = "Zażółćgęśląjaźń".repeat(6);
        let parts = m.wrap(&long, 60.0, BODY, false);
        assert!(parts.len() > 2);
        assert_eq!(parts.concat(), long);
        // Bold is wider than regular.
        assert!(m.width("Razem", 10.0, true) > m.width("Razem", 10.0, false));
    }

    #[test]
    fn every_amount_of_the_offer_is_laid_out() {
        let lines = [
            line("Księgowość", Billing::Monthly, 120_000, VatRate::Standard),
            line("Kadry", Billing::Monthly, 33_333, VatRate::Standard),
            line("Wdrożenie", Billing::OneOff, 50_050, VatRate::Reduced),
            line("Szkolenie", Billing::OneOff, 10_000, VatRate::Exempt),
        ];
        let m = Measure::new().unwrap_or_else(|e| unreachable!("{e}"));
        let pages = layout(&offer(&lines), &m);
        let all = texts(&pages);
        let t = totals(&lines);
        for amount in [
            t.monthly.total.net,
            t.monthly.total.vat,
            t.monthly.total.gross,
            t.one_off.total.net,
            t.one_off.total.vat,
            t.one_off.total.gross,
        ] {
            assert!(all.contains(&money(amount)), "{} missing", money(amount));
        }
        for l in &lines {
            let a = line_amounts(l);
            assert!(all.contains(&money(a.gross)));
        }
        assert!(all.contains(&"Opłaty miesięczne".to_owned()));
        assert!(all.contains(&"Opłaty jednorazowe".to_owned()));
        assert!(all.contains(&"Strona 1 / 1".to_owned()));
    }

    #[test]
    fn long_offers_break_pages_and_repeat_the_heading() {
        let lines: Vec<OfferLine> = (0..100)
            .map(|i| {
                line(
                    &format!("Usługa numer {i} z dość długim opisem, który zawija się w kolumnie"),
                    Billing::Monthly,
                    10_000 + i,
                    VatRate::Standard,
                )
            })
            .collect();
        let m = Measure::new().unwrap_or_else(|e| unreachable!("{e}"));
        let pages = layout(&offer(&lines), &m);
        assert!(pages.len() >= 3, "{} pages", pages.len());
        let n = pages.len();
        for (i, page) in pages.iter().enumerate() {
            let t = texts(std::slice::from_ref(page));
            assert!(t.contains(&"Usługa".to_owned()), "page {i} has no heading");
            assert!(t.contains(&format!("Strona {} / {n}", i + 1)));
            for op in page {
                if let Op::Text { y, .. } = op {
                    assert!(*y <= PAGE_H - 30.0 && *y >= MARGIN, "off the page: {y}");
                }
            }
        }
        assert!(texts(&pages).contains(&"100.".to_owned()));
    }

    /// The PDF's text read back by an independent reader: Polish letters intact, every
    /// amount present.
    #[test]
    fn a_rendered_offer_reads_back_with_its_polish_text_and_amounts() {
        let lines = [
            line(
                "Księgowość pełna (KPiR, VAT, ZUS)",
                Billing::Monthly,
                120_000,
                VatRate::Standard,
            ),
            line(
                "Wdrożenie i przejęcie dokumentów",
                Billing::OneOff,
                50_050,
                VatRate::Reduced,
            ),
            line(
                "Szkolenie z e-Urzędu Skarbowego",
                Billing::OneOff,
                10_000,
                VatRate::Exempt,
            ),
        ];
        let pdf = render(&offer(&lines)).unwrap_or_else(|e| unreachable!("{e}"));
        let text = pdf_extract::extract_text_from_mem(&pdf).unwrap_or_else(|e| unreachable!("{e}"));
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for needle in [
            "Oferta",
            "nr 3F2A91",
            "Biuro Rachunkowe Żółć sp. z o.o.",
            "Łukasz Gęślą — Usługi Źródlane",
            "NIP 5260250274",
            "Data wystawienia: 30.11.2026",
            "Ważna do: 30.12.2026",
            "Księgowość pełna (KPiR, VAT, ZUS)",
            "Wdrożenie i przejęcie dokumentów",
            "miesięcznie",
            "jednorazowo",
            "Opłaty miesięczne",
            "Opłaty jednorazowe",
            "zw.",
            // 1200,00 + 23 % = 1476,00; 500,50 + 8 % = 540,54; 100,00 exempt.
            "1 200,00",
            "276,00",
            "1 476,00",
            "540,54",
            "640,54",
            "Strona 1 / 1",
        ] {
            assert!(flat.contains(needle), "{needle:?} not in {flat:?}");
        }
    }

    #[test]
    fn the_same_offer_renders_to_the_same_bytes() {
        let lines = [line(
            "Księgowość",
            Billing::Monthly,
            120_000,
            VatRate::Standard,
        )];
        let a = render(&offer(&lines)).unwrap_or_default();
        let b = render(&offer(&lines)).unwrap_or_default();
        assert!(a.starts_with(b"%PDF-"));
        assert_eq!(a, b);
        // Subset fonts: far smaller than the two embedded faces (1.4 MB).
        assert!(a.len() < 120_000, "{} bytes", a.len());
    }
}
