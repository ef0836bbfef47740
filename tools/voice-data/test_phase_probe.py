"""phase_probe.py's premise on a signal whose answer is known: a harmonic voice-like tone and
the same magnitudes under random phases (Griffin-Lim's starting point) have nearly the same
magnitude statistics and far apart phase statistics. Needs numpy (skipped without it)."""
import importlib.util
import unittest

HAVE_NUMPY = importlib.util.find_spec("numpy") is not None and \
    importlib.util.find_spec("soundfile") is not None


@unittest.skipUnless(HAVE_NUMPY, "numpy and soundfile are not installed")
class PhaseProbe(unittest.TestCase):
    def test_random_phase_moves_the_phase_features_not_the_magnitude_ones(self):
        import numpy as np
        import phase_probe as probe

        rate, seconds = 16000, 2.0
        t = np.arange(int(rate * seconds)) / rate
        f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        voice = sum(np.sin(k * phase) / k for k in range(1, 25))
        voice *= 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2

        spec, _ = probe.stft(voice)
        rng = np.random.default_rng(7)
        scrambled = np.abs(spec) * np.exp(2j * np.pi * rng.random(spec.shape))
        frames = np.fft.irfft(scrambled, n=probe.N_FFT, axis=1) * np.hanning(probe.N_FFT)
        rebuilt = np.zeros(len(voice))
        for i, frame in enumerate(frames):
            rebuilt[i * probe.HOP:i * probe.HOP + probe.N_FFT] += frame

        mag_a, phase_a = probe.features(voice)
        mag_b, phase_b = probe.features(rebuilt / np.abs(rebuilt).max() * np.abs(voice).max())
        relative = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(a)
        self.assertGreater(relative(phase_a, phase_b), 3 * relative(mag_a[:probe.BANDS],
                                                                   mag_b[:probe.BANDS]))

    def test_eer_reads_separated_reversed_and_half_mixed_scores(self):
        import numpy as np
        import phase_probe as probe

        genuine, fake = np.array([0.0, 0.1]), np.array([0.9, 1.0])
        self.assertEqual(probe.eer(genuine, fake), 0.0)
        self.assertEqual(probe.eer(fake, genuine), 1.0)
        self.assertEqual(probe.eer(np.array([0.0, 0.95]), fake), 0.5)


if __name__ == "__main__":
    unittest.main()
