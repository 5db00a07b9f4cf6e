#!/usr/bin/env bash
# data_setup.sh: prepare segsyn's datasets and the official checkpoints under $SEGSYN_DATA (or ./data), each in its
# official layout. Run `./data_setup.sh --help` for what it can fetch and the variables it reads.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./data_setup.sh [--root DIR] NAME [NAME ...]

Prepares datasets and the official checkpoints for segsyn, each in its official on-disk
layout, under DIR (default: $SEGSYN_DATA, else ./data). Downloads resume, are
checksum-verified and extract atomically (into a temporary folder moved into place at the
end), so a folder that exists is complete; a second run verifies and skips.

Datasets:
  --synthetic [N]  the embedded default: N synthetic street frames (default 200 train,
                   N/4 val) in the Cityscapes layout, at DIR/synthetic_streets. No network.
  cityscapes       gtFine + leftImg8bit (trainvaltest), at DIR/cityscapes/{gtFine,leftImg8bit}.
                   Needs an account: set CITYSCAPES_USERNAME and CITYSCAPES_PASSWORD.
                   (~11 GB)
  voc              PASCAL VOC 2012 trainval, at DIR/VOCdevkit/VOC2012. (~2 GB)
  coco-stuff       COCO 2017 images + stuffthingmaps in the SPADE layout, at
                   DIR/coco_stuff/{train,val}_{img,label}. (~20 GB) Instance maps
                   (train_inst/val_inst) are not made: train SPADE without them,
                   spade_options('coco', no_instance=True).
  ade20k           ADE20K SceneParsing (ADEChallengeData2016), at DIR/ADEChallengeData2016. (~1 GB)

Official checkpoints (segsyn finds them by name: load_official_spade('cityscapes'),
segsyn synth --generator coco, load_official_denseaspp('cityscapes')):
  spade            the NVlabs SPADE generators for cityscapes, coco (COCO-Stuff) and ade20k: the
                   release's checkpoints.tar.gz (Google Drive), in its own layout at
                   DIR/checkpoints/spade/<dataset>_pretrained/latest_net_G.pth (so the NVlabs code
                   reads it too, with --checkpoints_dir DIR/checkpoints/spade). (~1.1 GB)
  denseaspp        the released DenseASPP-161 Cityscapes model, a single file (Google Drive),
                   at DIR/checkpoints/denseaspp/denseASPP161.pkl. (143 MB)

Options:
  --root DIR       where everything goes (beats $SEGSYN_DATA)
  -h, --help       this help

Variables:
  SEGSYN_DATA              the root when --root is not given (default ./data)
  SEGSYN_DOWNLOADS         where downloads are kept (default DIR/.downloads); partial
                           downloads (*.part) resume from here
  CITYSCAPES_USERNAME      cityscapes-dataset.com account, for `cityscapes`
  CITYSCAPES_PASSWORD
  SEGSYN_URL_<ARCHIVE>     override a download's URL (a mirror, or a local server in tests);
  SEGSYN_MD5_<ARCHIVE>     and its expected md5. <ARCHIVE> is one of: CITYSCAPES_GTFINE,
                           CITYSCAPES_LEFTIMG8BIT, VOC2012, COCO_TRAIN2017, COCO_VAL2017,
                           COCO_STUFFTHINGMAPS, ADE20K, SPADE_CHECKPOINTS, DENSEASPP161.
                           Downloads without a published md5 (Cityscapes, stuffthingmaps,
                           ADE20K, both checkpoints) are pinned once their first download has
                           extracted (an archive) or proved to be a PyTorch file (a single
                           checkpoint): their sha256 is recorded next to the download and
                           checked on every later run (a corrupt first download is deleted,
                           never pinned).
                           Google Drive sometimes answers with a web page (a download quota,
                           a sign-in) instead of the file: then download it in a browser,
                           put it in the downloads folder under the name the message gives,
                           and run again; it is verified and installed like a download.

Exit status is non-zero on any error, with a one-line message saying what to do.
EOF
}

die() { echo "data_setup.sh: error: $*" >&2; exit 1; }
say() { echo "data_setup.sh: $*"; }

# --- downloading ------------------------------------------------------------------------------------
# fetch KEY URL MD5 [CURL_ARGS...]: download into $DL/<basename>, resumably, and verify it.
fetch() {
  local key=$1 url=$2 md5=$3; shift 3
  local uvar="SEGSYN_URL_$key" mvar="SEGSYN_MD5_$key"
  url=${!uvar:-$url}; md5=${!mvar:-$md5}; FETCHED_MD5=$md5; FETCHED_URL=$url
  local f="$DL/$(download_name "$key" "$url")"
  if [ -f "$f" ] && verify "$f" "$md5" quiet; then say "$(basename "$f"): present and verified"; FETCHED=$f; return; fi
  [ -f "$f" ] && [ -n "$md5" ] && die "$f is corrupt (checksum mismatch); delete it and run again"
  [ -f "$f" ] && die "$f does not match the sha256 pinned in $f.sha256 at its first successful download; if the server's file changed, delete both and run again"
  check_space "$url" "$@"
  say "downloading $url"
  local rc=0 quiet=-sS
  [ -t 2 ] && quiet=--progress-bar
  curl $quiet -fL --retry 3 --connect-timeout 20 -C - -o "$f.part" "$@" "$url" || rc=$?
  if [ $rc -eq 33 ] || [ $rc -eq 36 ]; then       # server can't resume: start over
    rm -f "$f.part"; rc=0; curl $quiet -fL --retry 3 --connect-timeout 20 -o "$f.part" "$@" "$url" || rc=$?
  fi
  case $rc in
    0) ;;
    6|7|28) if [ -s "$f.part" ]; then die "cannot reach $url (no network? curl exit $rc); the partial file $f.part is kept and resumes next run"
            else rm -f "$f.part"; die "cannot reach $url (no network? curl exit $rc); nothing was downloaded"; fi ;;
    22) die "the server refused $url (HTTP error; check the URL or your credentials)" ;;
    23) die "could not write $f.part (disk full? $(df -h "$DL" | awk 'NR==2{print $4}') free in $DL)" ;;
    *) die "download of $url failed (curl exit $rc); run again to resume" ;;
  esac
  if ! verify "$f.part" "$md5"; then
    [ -n "$md5" ] && { rm -f "$f.part"; die "checksum mismatch for $(basename "$f") from $url: the file was deleted; run again (or fix SEGSYN_URL_$key)"; }
    mv "$f.part" "$f.mismatch"
    die "$(basename "$f") from $url does not match the sha256 pinned in $f.sha256 at its first successful download; the new file is kept as $f.mismatch. If the server's file changed (or that pin is wrong), delete $f.sha256, rename $f.mismatch to $f and run again"
  fi
  mv "$f.part" "$f"
  FETCHED=$f
}

# download_name KEY URL: the name a download is kept under (Cityscapes' and Google Drive's URLs end in a query)
download_name() {
  case $1 in
    CITYSCAPES_GTFINE) echo gtFine_trainvaltest.zip ;;
    CITYSCAPES_LEFTIMG8BIT) echo leftImg8bit_trainvaltest.zip ;;
    SPADE_CHECKPOINTS) echo checkpoints.tar.gz ;;
    DENSEASPP161) echo denseASPP161.pkl ;;
    *) basename "${2%%\?*}" ;;
  esac
}

# verify FILE MD5 [quiet]: against the md5 when one is known, else against the sha256 pinned at the
# first download (an archive with neither is accepted, and pinned by `fetch`).
verify() {
  local f=$1 want=$2 got pin="${1%.part}.sha256"
  if [ -n "$want" ]; then got=$(md5sum "$f" | cut -d' ' -f1)
  elif [ -f "$pin" ]; then want=$(cat "$pin"); got=$(sha256sum "$f" | cut -d' ' -f1)
  else return 0; fi
  [ "$got" = "$want" ] && return 0
  [ "${3:-}" = quiet ] || echo "data_setup.sh: $(basename "$f"): checksum $got, expected $want" >&2
  return 1
}

# check_space URL: fail early when the archive would not fit (when the server says its size)
check_space() {
  local url=$1; shift
  local size free
  size=$(curl -sIL --connect-timeout 20 "$@" "$url" 2>/dev/null | tr -d '\r' | awk 'tolower($1)=="content-length:"{n=$2} END{print n+0}') || size=0
  free=$(( $(df -Pk "$DL" | awk 'NR==2{print $4}') * 1024 ))
  if [ "${size:-0}" -gt 0 ] && [ $(( size * 2 )) -gt "$free" ]; then
    die "not enough disk space in $DL: the archive is $((size/1048576)) MB and needs about twice that to download and extract; $((free/1048576)) MB free"
  fi
}

# --- extracting -------------------------------------------------------------------------------------
# stage NAME: a fresh temporary folder next to the target, removed on exit unless installed
stage() { STAGE=$(mktemp -d "$ROOT/.tmp.$1.XXXXXX"); STAGES+=("$STAGE"); }
cleanup() { local s; for s in "${STAGES[@]:-}"; do if [ -n "$s" ]; then rm -rf "$s"; fi; done; return 0; }

# A download without a published checksum is pinned (its sha256 recorded) only once it has proved itself (an archive
# extracted with the files it should have; a checkpoint starts as a PyTorch file does): a corrupt first download is
# deleted, never pinned, so the next run fetches it again.
trusted() { [ -n "${FETCHED_MD5:-}" ] || [ -f "$1.sha256" ]; }    # a published md5, or a pin from an earlier success
pin() { trusted "$1" || sha256sum "$1" | cut -d' ' -f1 > "$1.sha256"; }

# reject FILE WHAT [TODO]: a download that is not what it should be: deleted when it had no checksum to trust, else kept
reject() {
  trusted "$1" && die "$1: $2; delete it and run again"
  rm -f "$1"; die "$1: $2: it was deleted (it had no checksum to trust); ${3:-run again to download it anew}"
}

# web_page FILE: is it an HTML page? (Google Drive sends one instead of a file over its download quota)
web_page() {
  local h; h=$(head -c 256 "$1" | tr -d '\000 \t\r\n' | tr 'A-Z' 'a-z')
  [[ $h == '<!doctype'* || $h == '<html'* ]]
}
check_web_page() {
  web_page "$1" && reject "$1" "a web page, not the file (Google Drive sends one when a file is over its download quota or needs a sign-in)" \
    "run again later, or open ${FETCHED_URL:-its URL} in a browser, save the file as $1 and run again"
  return 0
}

# outside_links DIR: true (LINK set) when a symbolic link in DIR resolves outside it (an archive could point a file
# of the dataset at /etc/passwd, or a later write through the link at anything the user owns)
outside_links() {
  local top l; top=$(cd "$1" && pwd -P)
  while IFS= read -r -d '' l; do
    case $(realpath -m "$l") in "$top"/*) ;; *) LINK=$l; return 0 ;; esac
  done < <(find "$1" -type l -print0)
  return 1
}

# unpack ARCHIVE DIR [PATH...]: extract into DIR, which must then hold every PATH; pin the archive if it had no checksum
unpack() {
  local ok=0 p
  check_web_page "$1"
  case $1 in
    *.zip) python3 -m zipfile -e "$1" "$2" 2>/dev/null || ok=$? ;;
    *.tar|*.tar.gz|*.tgz) tar -xf "$1" -C "$2" 2>/dev/null || ok=$? ;;
    *) die "unknown archive type: $1" ;;
  esac
  [ $ok -eq 0 ] || reject "$1" "could not extract it (a corrupt download?)"
  outside_links "$2" && reject "$1" "it holds a symbolic link to outside its folder ($LINK -> $(readlink "$LINK")); refused"
  for p in "${@:3}"; do [ -e "$2/$p" ] || reject "$1" "it extracted, but holds no $p (is it the right archive?)"; done
  pin "$1"
}

# place FILE DIR: a single checkpoint file, checked to start as a PyTorch file does (zip, or the legacy pickle of
# PyTorch < 1.6), pinned if it had no checksum, and moved into DIR (its pin stays with the downloads)
place() {
  check_web_page "$1"
  local head; head=$(od -An -tx1 -N4 "$1" | tr -d ' \n')
  [[ $head == 504b0304 || $head == 80??8a0a ]] || reject "$1" "not a PyTorch checkpoint (it starts with the bytes ${head:-(none)}, not a zip's or a legacy torch.save's)"
  pin "$1"; mv "$1" "$2/"
}

# install SRC DEST: move a complete folder into place and mark it complete
install_dir() {
  touch "$1/.segsyn_complete"; mkdir -p "$(dirname "$2")"; mv "$1" "$2"
  say "ready: $2"
}

# done_already DEST: true when DEST was completed by an earlier run; error when DEST is foreign
done_already() {
  [ -f "$1/.segsyn_complete" ] && { say "$1 already prepared; skipping"; return 0; }
  [ -e "$1" ] && die "$1 exists but was not completed by data_setup.sh (no .segsyn_complete): move it away and run again"
  return 1
}

# --- datasets ---------------------------------------------------------------------------------------
do_synthetic() {
  local n=$1 dest="$ROOT/synthetic_streets"
  done_already "$dest" && return
  stage synthetic
  python3 -c 'import segsyn' 2>/dev/null || die "segsyn is not installed in this Python ($(command -v python3)): pip install -e . first"
  python3 -m segsyn.cli data --synthetic "$n" --root "$STAGE/out" || die "the synthetic generator failed: its message is above"
  install_dir "$STAGE/out" "$dest"
}

do_cityscapes() {
  local dest="$ROOT/cityscapes"
  done_already "$dest" && return
  [ -n "${CITYSCAPES_USERNAME:-}" ] && [ -n "${CITYSCAPES_PASSWORD:-}" ] || \
    die "cityscapes needs an account: register at cityscapes-dataset.com, then set CITYSCAPES_USERNAME and CITYSCAPES_PASSWORD"
  local jar secret; jar=$(mktemp); secret=$(mktemp); STAGES+=("$jar" "$secret")
  local login=${SEGSYN_URL_CITYSCAPES_LOGIN:-https://www.cityscapes-dataset.com/login/}
  # the password goes to curl through a file only this user can read (printf is a shell builtin): on curl's
  # command line it would be readable by every local user in /proc/PID/cmdline
  chmod 600 "$secret"; printf '%s' "$CITYSCAPES_PASSWORD" > "$secret"
  curl -fsS --connect-timeout 20 -c "$jar" -o /dev/null --data-urlencode "username=$CITYSCAPES_USERNAME" \
    --data-urlencode "password@$secret" -d submit=Login "$login" || die "cityscapes login failed at $login (no network or wrong credentials)"
  stage cityscapes
  fetch CITYSCAPES_GTFINE "https://www.cityscapes-dataset.com/file-handling/?packageID=1" "" -b "$jar"; unpack "$FETCHED" "$STAGE"
  fetch CITYSCAPES_LEFTIMG8BIT "https://www.cityscapes-dataset.com/file-handling/?packageID=3" "" -b "$jar"; unpack "$FETCHED" "$STAGE"
  [ -d "$STAGE/gtFine" ] && [ -d "$STAGE/leftImg8bit" ] || die "the Cityscapes archives did not contain gtFine/ and leftImg8bit/"
  install_dir "$STAGE" "$dest"
}

do_voc() {
  local dest="$ROOT/VOCdevkit/VOC2012"
  done_already "$dest" && return
  fetch VOC2012 "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar" 6cd6e144f989b92b3379bac3b3de84fd
  stage voc; unpack "$FETCHED" "$STAGE"
  [ -d "$STAGE/VOCdevkit/VOC2012/SegmentationClass" ] || die "$FETCHED has no VOCdevkit/VOC2012/SegmentationClass"
  install_dir "$STAGE/VOCdevkit/VOC2012" "$dest"
}

do_coco_stuff() {
  local dest="$ROOT/coco_stuff"
  done_already "$dest" && return
  stage coco; local s=$STAGE; mkdir -p "$s/out"
  fetch COCO_TRAIN2017 http://images.cocodataset.org/zips/train2017.zip cced6f7f71b7629ddf16f17bbcfab6b2; unpack "$FETCHED" "$s"
  fetch COCO_VAL2017 http://images.cocodataset.org/zips/val2017.zip 442b8da7639aecaf257c1dceb8ba8c80; unpack "$FETCHED" "$s"
  mv "$s/train2017" "$s/out/train_img"; mv "$s/val2017" "$s/out/val_img"
  fetch COCO_STUFFTHINGMAPS http://calvin.inf.ed.ac.uk/wp-content/uploads/data/cocostuffdataset/stuffthingmaps_trainval2017.zip ""
  unpack "$FETCHED" "$s"
  mv "$s/train2017" "$s/out/train_label"; mv "$s/val2017" "$s/out/val_label"
  install_dir "$s/out" "$dest"
}

do_spade() {
  local dest="$ROOT/checkpoints/spade"
  done_already "$dest" && return
  # the NVlabs/SPADE README's Google Drive file (checkpoints.tar.gz): cityscapes_, coco_, ade20k_pretrained/latest_net_G.pth
  fetch SPADE_CHECKPOINTS "https://drive.usercontent.google.com/download?id=12gvlTbMvUcJewQlSEaZdeb2CdOB-b8kQ&export=download&confirm=t" ""
  stage spade; unpack "$FETCHED" "$STAGE" cityscapes_pretrained/latest_net_G.pth coco_pretrained/latest_net_G.pth ade20k_pretrained/latest_net_G.pth
  install_dir "$STAGE" "$dest"
}

do_denseaspp() {
  local dest="$ROOT/checkpoints/denseaspp"
  done_already "$dest" && return
  # the DeepMotionAIResearch/DenseASPP README's DenseNet161 model (its latest link; the performance table links an
  # earlier upload, id 1sCr-OkMUayaHAijdQrzndKk2WW78MVZG: use it through SEGSYN_URL_DENSEASPP161 if this one fails)
  fetch DENSEASPP161 "https://drive.usercontent.google.com/download?id=1kMKyboVGWlBxgYRYYnOXiA1mj_ufAXNJ&export=download&confirm=t" ""
  stage denseaspp; place "$FETCHED" "$STAGE"
  install_dir "$STAGE" "$dest"
}

do_ade20k() {
  local dest="$ROOT/ADEChallengeData2016"
  done_already "$dest" && return
  fetch ADE20K http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip ""
  stage ade20k; unpack "$FETCHED" "$STAGE"
  [ -d "$STAGE/ADEChallengeData2016/annotations" ] || die "$FETCHED has no ADEChallengeData2016/annotations"
  install_dir "$STAGE/ADEChallengeData2016" "$dest"
}

# --- main -------------------------------------------------------------------------------------------
ROOT=${SEGSYN_DATA:-./data}
STAGES=()
TODO=()
[ $# -gt 0 ] || die "name at least one dataset or checkpoint: --synthetic [N], cityscapes, voc, coco-stuff, ade20k, spade or denseaspp (see --help)"
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --root) [ $# -ge 2 ] || die "--root needs a folder"; ROOT=$2; shift 2 ;;
    --synthetic)
      if [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]]; then TODO+=("synthetic:$2"); shift 2; else TODO+=("synthetic:200"); shift; fi ;;
    cityscapes|voc|coco-stuff|ade20k|spade|denseaspp) TODO+=("$1"); shift ;;
    *) die "unknown dataset, checkpoint or option '$1'; known: --synthetic [N], cityscapes, voc, coco-stuff, ade20k (datasets), spade, denseaspp (checkpoints) (see --help)" ;;
  esac
done
mkdir -p "$ROOT" || die "cannot create the data root $ROOT"
ROOT=$(cd "$ROOT" && pwd)
DL=${SEGSYN_DOWNLOADS:-$ROOT/.downloads}; mkdir -p "$DL"
# one data_setup.sh per data root (the lock lives inside it); then the staging folders of a killed run can go
if command -v flock >/dev/null; then
  exec 9>"$ROOT/.data_setup.lock"
  flock -n 9 || die "another data_setup.sh is preparing $ROOT; wait for it to finish (or use another --root)"
  for s in "$ROOT"/.tmp.*; do [ -e "$s" ] && { say "removing $s, left by a run that was killed"; rm -rf "$s"; }; done
fi
trap cleanup EXIT
for t in "${TODO[@]}"; do
  case $t in
    synthetic:*) do_synthetic "${t#synthetic:}" ;;
    cityscapes) do_cityscapes ;;
    voc) do_voc ;;
    coco-stuff) do_coco_stuff ;;
    ade20k) do_ade20k ;;
    spade) do_spade ;;
    denseaspp) do_denseaspp ;;
  esac
done
