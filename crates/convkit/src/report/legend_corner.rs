//! Where a chart's legend goes: the corner where it hides the fewest data points, as
//! matplotlib's `loc="best"` chooses.

use plotters::chart::SeriesLabelPosition;

/// The corners and edge middles a legend may take, in the order ties are broken after
/// the caller's preference.
const CANDIDATES: [SeriesLabelPosition; 6] = [
    SeriesLabelPosition::UpperRight,
    SeriesLabelPosition::LowerRight,
    SeriesLabelPosition::UpperLeft,
    SeriesLabelPosition::LowerLeft,
    SeriesLabelPosition::MiddleRight,
    SeriesLabelPosition::MiddleLeft,
];

/// Gap plotters leaves between a legend and the plotting area's edge, in pixels.
const EDGE_GAP: i32 = 5;

/// The position for a legend of `legend` pixels (width, height) in a plotting area of
/// `area` pixels that covers the fewest of `points` (pixels from the area's upper left
/// corner; lines given as points along them). `preferred` wins every tie, then the order
/// of [`CANDIDATES`].
pub(crate) fn quietest_corner(
    legend: (i32, i32),
    area: (u32, u32),
    points: &[(i32, i32)],
    preferred: SeriesLabelPosition,
) -> SeriesLabelPosition {
    let hidden = |position: &SeriesLabelPosition| {
        let (left, top) = legend_origin(position, legend, area);
        points
            .iter()
            .filter(|(x, y)| {
                (left..=left + legend.0).contains(x) && (top..=top + legend.1).contains(y)
            })
            .count()
    };
    let mut best = (hidden(&preferred), preferred.clone());
    for position in CANDIDATES {
        let count = hidden(&position);
        if count < best.0 {
            best = (count, position);
        }
    }
    best.1
}

/// The upper left corner plotters draws a legend of size `legend` at, for `position`.
fn legend_origin(
    position: &SeriesLabelPosition,
    legend: (i32, i32),
    area: (u32, u32),
) -> (i32, i32) {
    use SeriesLabelPosition::*;
    let (width, height) = (area.0 as i32, area.1 as i32);
    let x = match position {
        UpperLeft | MiddleLeft | LowerLeft => EDGE_GAP,
        UpperMiddle | MiddleMiddle | LowerMiddle => (width - legend.0) / 2,
        UpperRight | MiddleRight | LowerRight => width - legend.0 - EDGE_GAP,
        Coordinate(x, _) => *x,
    };
    let y = match position {
        UpperLeft | UpperMiddle | UpperRight => EDGE_GAP,
        MiddleLeft | MiddleMiddle | MiddleRight => (height - legend.1) / 2,
        LowerLeft | LowerMiddle | LowerRight => height - legend.1 - EDGE_GAP,
        Coordinate(_, y) => *y,
    };
    (x, y)
}

/// `count` points evenly along the segment from `a` to `b`, both ends included: how a
/// line joins the legend's count of hidden points.
pub(crate) fn points_along(a: (i32, i32), b: (i32, i32), count: usize) -> Vec<(i32, i32)> {
    let steps = count.max(2) - 1;
    (0..=steps)
        .map(|i| {
            let t = i as f64 / steps as f64;
            let lerp = |p: i32, q: i32| (p as f64 + t * (q - p) as f64).round() as i32;
            (lerp(a.0, b.0), lerp(a.1, b.1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AREA: (u32, u32) = (500, 300);
    const LEGEND: (i32, i32) = (150, 60);

    fn is(position: SeriesLabelPosition, expected: SeriesLabelPosition) -> bool {
        legend_origin(&position, LEGEND, AREA) == legend_origin(&expected, LEGEND, AREA)
    }

    #[test]
    fn an_empty_chart_keeps_the_preferred_corner() {
        let corner = quietest_corner(LEGEND, AREA, &[], SeriesLabelPosition::LowerRight);
        assert!(is(corner, SeriesLabelPosition::LowerRight));
    }

    /// A falling training loss starts in the upper left and ends in the lower right: the
    /// preferred upper right is kept while it is free, and left once points are under it.
    #[test]
    fn points_under_the_preferred_corner_move_the_legend() {
        let falling = points_along((0, 0), (500, 300), 50);
        let corner = quietest_corner(LEGEND, AREA, &falling, SeriesLabelPosition::UpperRight);
        assert!(is(corner, SeriesLabelPosition::UpperRight));
        // Training points along the top, as a loss that stays high and flat.
        let flat_top = points_along((0, 10), (500, 10), 50);
        let corner = quietest_corner(LEGEND, AREA, &flat_top, SeriesLabelPosition::UpperRight);
        assert!(is(corner, SeriesLabelPosition::LowerRight));
    }

    #[test]
    fn the_corner_hiding_fewest_points_wins_when_none_is_free() {
        // Points in every corner, fewest in the lower left.
        let mut points = Vec::new();
        for (corner, count) in [
            ((480, 20), 5),
            ((480, 280), 4),
            ((20, 20), 3),
            ((20, 280), 1),
        ] {
            points.extend(std::iter::repeat_n(corner, count));
        }
        points.extend(std::iter::repeat_n((480, 150), 9));
        points.extend(std::iter::repeat_n((20, 150), 9));
        let corner = quietest_corner(LEGEND, AREA, &points, SeriesLabelPosition::UpperRight);
        assert!(is(corner, SeriesLabelPosition::LowerLeft));
    }

    #[test]
    fn points_along_a_segment_include_both_ends() {
        assert_eq!(
            points_along((0, 0), (10, 20), 3),
            vec![(0, 0), (5, 10), (10, 20)]
        );
        assert_eq!(points_along((4, 4), (4, 4), 1), vec![(4, 4), (4, 4)]);
    }
}
