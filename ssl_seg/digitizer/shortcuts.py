"""predict's shortcut flags (--track, --scale, --curve-names, ...) as a layout: the same
`scan_layout.make_layout` arguments a layout file gives."""

from ssl_seg.digitizer import las, scan_layout


def curve_names(class_names, n_tracks, names=None):
  """LAS mnemonics per (track, curve): CURVE1 / T2_CURVE1 ..., or the user's list in order."""
  default = [(f"T{t + 1}_" if n_tracks > 1 else "") + c.upper()
             for t in range(n_tracks) for c in class_names[1:]]
  if not names:
    return default
  if len(names) != len(default):
    raise ValueError(f"--curve-names needs {len(default)} names (tracks x curves, in order "
                     f"{', '.join(default)}), got {len(names)}")
  return [las.check_mnemonic(n.upper()) for n in names]


def _per_curve(flag, given, default_names):
  """`given` spread over every curve: none, one for all, or one per curve in order."""
  n = len(default_names)
  if len(given) in (0, 1, n):
    return list(given) * n if len(given) == 1 else list(given) or [None] * n
  raise ValueError(f"give one {flag} for every curve or one per curve ({n}: "
                   f"{', '.join(default_names)}, in that order), got {len(given)}; each curve "
                   "of a track has its own scale")


def shortcut_layout(class_names, *, depth_axis="auto", tracks=(), scales=(), depth=None,
                    depth_unit="M", names=None, units=None, well="", n_tracks=None):
  """`scan_layout.make_layout` arguments from predict's flags, as a layout file gives them.

  n_tracks: the tracks the curves are for (default: one per span of `tracks`, at least one).
  """
  n_tracks = n_tracks or max(len(tracks), 1)
  default = curve_names(class_names, n_tracks)
  mnemonics = curve_names(class_names, n_tracks, names) if names else [""] * len(default)
  scales = _per_curve("--scale", scales, default)
  units = [las.check_unit(u) if u else "" for u in _per_curve("--curve-units", units or (),
                                                              default)]
  k = len(class_names) - 1
  curves = tuple(tuple(scan_layout.Curve(c + 1, mnemonics[t * k + c], units[t * k + c] or "",
                                         scales[t * k + c]) for c in range(k))
                 for t in range(n_tracks))
  if not any((names, units, *scales)):
    curves = ()  # Every curve class under its default name, in however many tracks.
  return dict(depth_axis=depth_axis, tracks=tuple(tracks), curves=curves, depth=depth,
              depth_unit=depth_unit, well=well)


def tracks_implied(class_names, *per_curve):
  """The tracks that flag values given per curve are for (k curve classes: k values a track);
  1 where each is given once or not at all."""
  k = len(class_names) - 1
  return max([-(-len(v) // k) for v in per_curve if v and len(v) > 1] or [1])


def with_found_tracks(class_names, image, depth_axis, layout, shortcuts):
  """(make_layout arguments with the tracks `scan_layout.find_tracks` finds in `image`, the line
  saying what was found), from `layout` or from `shortcut_layout`'s `shortcuts`. Shortcuts are
  spread over the tracks found; a layout's curves (per curve values) must fit their number."""
  spans, found = scan_layout.find_tracks(image, depth_axis)
  try:
    if layout is None:
      return shortcut_layout(class_names, **{**shortcuts, "tracks": spans}), found
    if layout.get("curves") and len(layout["curves"]) != len(spans):
      raise ValueError(f"the layout gives curves for {len(layout['curves'])} track(s)")
  except ValueError as e:
    fix = "--track=X0:X1 per track" if layout is None else "each track's span in the layout"
    raise ValueError(f"{found}: {e}; or give {fix} (without --track-detect: one track over "
                     "the whole image)") from None
  return {**layout, "tracks": spans}, found


def parse_depth(text):
  if text is None:
    return None
  try:
    first, last = (float(v) for v in text.split(":"))
  except ValueError:
    raise ValueError(f"--depth {text!r}: expected FIRST:LAST (numbers)") from None
  return first, last
