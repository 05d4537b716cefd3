// Checks an ontology document against the OWL 2 profiles with the OWL API's own checkers
// (Debian package libowlapi-java). Run by tests/test_ontology.py as a single-file program:
//   java -cp <owlapi jars> OwlProfile.java ONTOLOGY.ttl
// Prints one line per profile, "PROFILE <name> <violations>", then one line per violation,
// "VIOLATION <name> <class of violation> <axiom or term>".
import java.io.File;
import org.semanticweb.owlapi.apibinding.OWLManager;
import org.semanticweb.owlapi.model.OWLOntology;
import org.semanticweb.owlapi.model.OWLOntologyManager;
import org.semanticweb.owlapi.profiles.OWLProfileReport;
import org.semanticweb.owlapi.profiles.OWLProfileViolation;
import org.semanticweb.owlapi.profiles.Profiles;

public class OwlProfile {
    public static void main(String[] args) throws Exception {
        OWLOntologyManager manager = OWLManager.createOWLOntologyManager();
        OWLOntology ontology = manager.loadOntologyFromOntologyDocument(new File(args[0]));
        Profiles[] profiles = {Profiles.OWL2_DL, Profiles.OWL2_RL, Profiles.OWL2_EL, Profiles.OWL2_QL};
        for (Profiles profile : profiles) {
            OWLProfileReport report = profile.checkOntology(ontology);
            System.out.println("PROFILE " + profile.name() + " " + report.getViolations().size());
            for (OWLProfileViolation violation : report.getViolations()) {
                String text = String.valueOf(violation).replace('\n', ' ');
                System.out.println("VIOLATION " + profile.name() + " "
                    + violation.getClass().getSimpleName() + " " + text);
            }
        }
    }
}
