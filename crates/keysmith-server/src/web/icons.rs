//! The few icons the pages use, as inline SVG: no request, nothing for the
//! Content-Security-Policy to allow, and `currentColor` so they follow the text.
//! Decorative only (`aria-hidden`): every control that shows one also has a text
//! name. Shapes after Feather (MIT licence).

use maud::{Markup, html};

#[derive(Clone, Copy)]
pub enum Icon {
    Key,
    Pencil,
    Rotate,
    Trash,
    ChevronDown,
    List,
    Plus,
}

impl Icon {
    /// The SVG path data, in a 24 × 24 box, drawn with a 2-unit stroke.
    fn paths(self) -> &'static [&'static str] {
        match self {
            Icon::Key => &[
                "M21 2l-2 2m-7.6 7.6a5.5 5.5 0 1 1-7.8 7.8 5.5 5.5 0 0 1 7.8-7.8zm0 0L15.5 7.5m0 0l3 3L22 7l-3-3m-3.5 3.5L19 4",
            ],
            Icon::Pencil => &["M12 20h9", "M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4L16.5 3.5z"],
            Icon::Rotate => &[
                "M23 4v6h-6",
                "M1 20v-6h6",
                "M3.5 9a9 9 0 0 1 14.9-3.4L23 10M1 14l4.6 4.4A9 9 0 0 0 20.5 15",
            ],
            Icon::Trash => &[
                "M3 6h18",
                "M19 6v14a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V6m3 0V4a2 2 0 0 1 2-2h4a2 2 0 0 1 2 2v2",
            ],
            Icon::ChevronDown => &["M6 9l6 6 6-6"],
            Icon::List => &["M8 6h13", "M8 12h13", "M8 18h13", "M3 6h.01", "M3 12h.01", "M3 18h.01"],
            Icon::Plus => &["M12 5v14", "M5 12h14"],
        }
    }
}

/// The icon, sized by the stylesheet (`.icon`: 1em square).
pub fn icon(which: Icon) -> Markup {
    html! {
        svg.icon viewBox="0 0 24 24" fill="none" stroke="currentColor"
            stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false" {
            @for d in which.paths() { path d=(d) {} }
        }
    }
}
