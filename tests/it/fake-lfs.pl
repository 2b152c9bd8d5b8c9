use strict; use warnings;
binmode STDIN; binmode STDOUT; $| = 1;
my $mode = $ENV{FAKE_LFS} // 'error';
sub rd { my $n = read(STDIN, my $len, 4); return undef unless $n;
  return '' if $len eq '0000'; my $size = hex($len) - 4; my $buf = '';
  while (length($buf) < $size) { read(STDIN, $buf, $size - length($buf), length($buf)) or die "short"; }
  return $buf; }
sub txt { my $l = rd(); $l =~ s/\n\z// if defined $l; return $l; }
sub wr { my $d = shift; printf STDOUT "%04x", length($d) + 4; print STDOUT $d; }
sub fl { print STDOUT "0000"; }
txt() eq "git-filter-client" or die "client"; txt() eq "version=2" or die "version";
defined(rd()) or die "flush";
wr("git-filter-server\n"); wr("version=2\n"); fl();
while (1) { my $l = rd(); last if !defined($l) || $l eq ''; }
wr("capability=clean\n"); wr("capability=smudge\n"); fl();
while (defined(my $cmd = txt())) {
  my $path = '';
  while (1) { my $l = rd(); die "eof" unless defined $l; last if $l eq ''; $path = $1 if $l =~ /^pathname=(.*)\n/; }
  my $data = '';
  while (1) { my $p = rd(); die "eof" unless defined $p; last if $p eq ''; $data .= $p; }
  if ($cmd eq "command=smudge") {
    print STDERR "Error downloading object: $path: Smudge error: object does not exist on the server\n";
    exit 2 if $mode eq 'die';
    wr("status=error\n"); fl(); next;
  }
  wr("status=success\n"); fl(); wr($data) if length $data; fl(); fl();
}
